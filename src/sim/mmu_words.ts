// SPDX-License-Identifier: MIT
// The words a panel or a narration uses for KVM's second-level tables, by the MMU in use:
// EPT (Intel), NPT (AMD) or shadow paging, so no label says "EPT" under NPT or shadow.

export type MmuName = "ept" | "npt" | "shadow";

export interface MmuWords {
  mmu: MmuName;
  /** The tables' name: "EPT", "NPT", "shadow". */
  tables: string;
  /** An entry of them: "EPT entry", "NPT entry", "shadow PTE (spte)". */
  entry: string;
  entries: string;
  /** The exit a missing entry causes. */
  missExit: string;
  /** The kernel path of KVM's fault handler for that exit. */
  faultPath: string;
  /** The kernel function that installs an entry. */
  installPath: string;
}

const WORDS: Record<MmuName, MmuWords> = {
  ept: {
    mmu: "ept",
    tables: "EPT",
    entry: "EPT entry",
    entries: "EPT entries",
    missExit: "EPT violation",
    faultPath: "handle_ept_violation() -> kvm_mmu_page_fault() -> kvm_tdp_page_fault()",
    installPath: "kvm_tdp_mmu_map() -> tdp_mmu_map_handle_target_level() -> make_spte()",
  },
  npt: {
    mmu: "npt",
    tables: "NPT",
    entry: "NPT entry",
    entries: "NPT entries",
    missExit: "NPF (nested page fault)",
    faultPath: "npf_interception() -> kvm_mmu_page_fault() -> kvm_tdp_page_fault()",
    installPath: "kvm_tdp_mmu_map() -> tdp_mmu_map_handle_target_level() -> make_spte()",
  },
  shadow: {
    mmu: "shadow",
    tables: "shadow",
    entry: "shadow PTE (spte)",
    entries: "shadow PTEs (sptes)",
    missExit: "page-fault exit (#PF intercepted)",
    // paging_tmpl.h: the shadow MMU's handler walks the guest's tables in software, then builds sptes.
    faultPath: "handle_exception_nmi() -> kvm_mmu_page_fault() -> FNAME(page_fault)",
    installPath: "FNAME(page_fault) -> FNAME(fetch) -> mmu_set_spte() -> make_spte()",
  },
};

/** The words for `mmu` ("ept", "npt" or "shadow"; anything else reads as EPT). */
export function mmuWords(mmu: string): MmuWords {
  return mmu === "npt" || mmu === "shadow" ? WORDS[mmu] : WORDS.ept;
}
