// SPDX-License-Identifier: MIT
// The event kinds KVM emits (SEED-PATHS.md paths 2 and 4, and its half of path 5), declared
// once: a sentence, the kernel function it stands for, and the fields.

import type { EventDecls, EventMapOf } from "../hw/events.js";

export const KVM_EVENTS = {
  "kvm.exit": {
    description:
      "A VM exit: the vCPU leaves the guest and KVM handles the reason (under EPT/NPT a nested-paging fault; under shadow paging an intercepted #PF, a CR3 load or an INVLPG).",
    mirrors: "vcpu_enter_guest() -> vmx_handle_exit() / svm_handle_exit()",
    fields: { vcpu: "number", reason: "string", gpa: "number?", gva: "number?", error: "number?", cr3: "number?", noFlush: "number?" },
  },
  "kvm.faultin": {
    description: "KVM finds the memslot, turns the gpa into QEMU's hva and gets the host page from the host mm.",
    mirrors: "kvm_faultin_pfn() -> __kvm_faultin_pfn() -> hva_to_pfn() (get_user_pages)",
    fields: { vcpu: "number", gfn: "number", hva: "number", pfn: "number", writable: "number" },
  },
  "kvm.fault_retry": {
    description: "An invalidation ran between KVM's read of the invalidation sequence and its install: the fault is retried.",
    mirrors: "is_page_fault_stale() -> mmu_invalidate_retry_gfn(), RET_PF_RETRY",
    fields: { vcpu: "number", gfn: "number", seq: "number" },
  },
  "kvm.spte_install": {
    description: "KVM writes the EPT/NPT (or shadow) leaf entry mapping the guest frame to the host frame.",
    mirrors: "tdp_mmu_map_handle_target_level() -> make_spte(); shadow: mmu_set_spte()",
    fields: { gfn: "number", level: "number", pfn: "number", writable: "number?", prefetch: "number?" },
  },
  "kvm.entry": {
    description: "VM entry: the guest resumes and retries its access.",
    mirrors: "vmx_vcpu_run() -> VMRESUME / VMRUN",
    fields: { vcpu: "number" },
  },
  "kvm.fast_fault": {
    description: "A fault fixed without taking mmu_lock (an access-tracked or write-protected entry).",
    mirrors: "fast_page_fault()",
    fields: { vcpu: "number", gfn: "number", fix: "string" },
  },
  "kvm.huge_split": {
    description:
      "A huge EPT/NPT leaf becomes a table of 512 smaller leaves mapping the same frames (dirty logging, or a smaller mapping in its range).",
    mirrors: "tdp_mmu_split_huge_page()",
    fields: { gfn: "number", level: "number" },
  },
  "kvm.dirty_log": {
    description: "Dirty logging on a memslot: started or stopped, or its log harvested (pages: the dirty pages returned or re-protected).",
    mirrors: "kvm_mmu_slot_apply_flags(), kvm_get_dirty_log_protect(), kvm_clear_dirty_log_protect(), kvm_dirty_ring_reset()",
    fields: { vm: "string", slot: "number", op: "string", pages: "number" },
  },
  "kvm.notifier_zap": {
    description:
      "KVM drops the EPT/NPT (or shadow) entries of the host-virtual range that is about to change (gfn: the first guest frame of the range, kvm_gfn_range.start in the first overlapping memslot).",
    mirrors: "kvm_mmu_notifier_invalidate_range_start() -> kvm_unmap_gfn_range()",
    fields: { vm: "string", start: "number", end: "number", gfn: "number", zapped: "number" },
  },
  "kvm.remote_tlb_flush": {
    description: "KVM makes every vCPU of the VM flush its TLB, so no stale translation survives.",
    mirrors: "kvm_flush_remote_tlbs()",
    fields: { vm: "string", ipi: "number" },
  },
  // The shadow MMU (path 2)
  "kvm.sp_alloc": {
    description:
      "KVM allocates a shadow page: the host's copy of one guest page table (or a direct page for a guest huge page), which the hardware walks instead.",
    mirrors: "kvm_mmu_get_shadow_page() -> kvm_mmu_alloc_shadow_page()",
    fields: { id: "number", gfn: "number", level: "number", direct: "number" },
  },
  "kvm.sp_zap": {
    description: "KVM zaps a shadow page: its children and parents are unlinked and its guest table is no longer shadowed.",
    mirrors: "__kvm_mmu_prepare_zap_page()",
    fields: { id: "number", gfn: "number", level: "number", root: "number" },
  },
  "kvm.inject_pf": {
    description: "KVM's walk of the guest's own tables explains the fault: KVM reflects the page fault into the guest.",
    mirrors: "kvm_inject_emulated_page_fault()",
    fields: { vcpu: "number", gva: "number", error: "number" },
  },
  "kvm.root_load": {
    description: "The guest loaded CR3 and no cached root matched: KVM gets a shadow root for it (found or built).",
    mirrors: "kvm_mmu_load()",
    fields: { id: "number", gfn: "number", pgd: "number" },
  },
  "kvm.unsync": {
    description: "KVM lets a shadow page go out of sync: the guest may write that leaf table without exits until its next TLB flush.",
    mirrors: "mmu_try_to_unsync_pages() -> kvm_unsync_page()",
    fields: { id: "number", gfn: "number" },
  },
  "kvm.sync_page": {
    description: "KVM re-reads an unsync table's entries and fixes its sptes, in step with the guest's table again.",
    mirrors: "kvm_sync_page()",
    fields: { id: "number", gfn: "number", flush: "number" },
  },
  "kvm.pte_write": {
    description:
      "The emulator wrote guest RAM while KVM shadows guest tables (a write to a write-protected guest page table that exited): KVM updates the shadow entries.",
    mirrors: "kvm_mmu_track_write()",
    fields: { gpa: "number", bytes: "number" },
  },
  "kvm.write_flooding": {
    description: "An upper-level guest table written three times without use: KVM stops shadowing it and zaps its shadow page.",
    mirrors: "detect_write_flooding()",
    fields: { id: "number", gfn: "number", level: "number" },
  },
} as const satisfies EventDecls;

export type KvmEventMap = EventMapOf<typeof KVM_EVENTS>;
