// SPDX-License-Identifier: MIT
// KVM's MMU interface (arch/x86/kvm/mmu.h, mmu/mmu_internal.h): the RET_PF_* codes, the fault
// struct (struct kvm_page_fault), the VM-wide operations every MMU implements (struct kvm_mmu's
// page tables as the notifier and the VM see them), the per-vCPU side, and what KVM asks of the
// host (the VMM's mm behind guest RAM, the frames of its tables). A leaf: the fault front door
// is in page_fault.ts, the two MMUs in tdp_mmu.ts and shadow_mmu.ts.

import type { HwMmu } from "../hw/mmu_core.js";
import type { SpteFormat } from "./spte.js";

/** RET_PF_* (mmu_internal.h). */
export const RET_PF_CONTINUE = 0;
export const RET_PF_RETRY = 1;
export const RET_PF_FIXED = 2;
export const RET_PF_SPURIOUS = 3;
export const RET_PF_EMULATE = 4;
/** Not a kernel code: the host could not back the page (the VMM would get -EFAULT / SIGBUS). */
export const RET_PF_FAILED = -1;

/** The errnos KVM's MMU returns or gets back from the host, as negative return codes. */
export const ENOMEM = 12;
export const EFAULT = 14;
export const ENOSPC = 28;
export const EHWPOISON = 133;

/** What KVM asks of the host mm that backs guest RAM (hva_to_pfn() and friends), bound to the VMM's mm. */
export interface HostMmOps {
  /**
   * get_user_pages() of one page, faulting it in: the 4 KiB host frame backing `hva`, or -ENOMEM,
   * -EFAULT or -EHWPOISON if the host could not provide one. `gupWritable` then says whether the
   * mapping is writable.
   */
  gup(hva: number, write: boolean): number;
  /** get_user_page_fast_only(): the frame only if `hva` is already mapped (and writable, for a write); else -1. */
  gupFast(hva: number, write: boolean): number;
  readonly gupWritable: boolean;
  /** host_pfn_mapping_level(): the level of the host leaf mapping `hva` (1, 2 or 3). */
  hostMappingLevel(hva: number): number;
  /** A gup failure (-errno) in a sentence: for -ENOMEM, the host's OOM report. */
  gupError(err: number): string;
  /**
   * kvm_release_page_dirty(): the folio backing pfn is marked dirty (folio_mark_dirty()), as KVM
   * does (Linux >= 6.13) for every page it maps with a host-writable spte, before the guest writes.
   */
  markDirty(pfn: number): void;
}

/** Where KVM gets and returns the host frames of its tables (the host's page allocator). */
export interface MmuPageAllocator {
  /** A zeroed host frame for a table, or -1 when the host is out of memory. */
  allocMmuPage(): number;
  freeMmuPage(pfn: number): void;
}

/** Told of every leaf spte change (the invariant checker hooks it). */
export interface SpteObserver {
  leafChanged(gfn: number, level: number, oldPfn: number, newPfn: number): void;
}

/** struct kvm_page_fault: one per vCPU, filled by each fault (no allocation per fault). */
export class KvmPageFault {
  /** The faulting address: a gpa (TDP) or a gva (shadow paging). */
  addr = 0;
  errorCode = 0;
  write = false;
  present = false;
  gfn = 0;
  /** The guest-physical address failure messages name. */
  gpa = 0;
  hva = 0;
  /** The host frame of gfn, and whether the host maps it writable (fault->map_writable). */
  pfn = -1;
  mapWritable = false;
  slotMaxLevel = 1;
  /** fault->mmu_seq. */
  mmuSeq = 0;
  /** An invalidation ran since mmuSeq (seen with the re-check skipped). */
  raced = false;
  /** Installed although an invalidation took the page (only with the seq re-check skipped). */
  stale = false;
  /** Why the fault returned RET_PF_FAILED. */
  reason = "";

  init(addr: number, errorCode: number, write: boolean, present: boolean): void {
    this.addr = addr;
    this.errorCode = errorCode;
    this.write = write;
    this.present = present;
    this.pfn = -1;
    this.raced = false;
    this.stale = false;
  }

  fail(reason: string): number {
    this.reason = reason;
    return RET_PF_FAILED;
  }
}

/** The VM-wide side of an MMU (TDP or shadow), as the notifier and the VM call it. */
export interface KvmMmu {
  /** kvm_unmap_gfn_range(): zaps the leaves mapping [start, end); returns how many. */
  unmapGfnRange(start: number, end: number): number;
  /** kvm_age_gfn() / kvm_test_age_gfn(). */
  age(start: number, end: number, clear: boolean): boolean;
  /** kvm_mmu_zap_all(): every spte goes (the TDP root stays unless `freeRoot`). */
  zapAll(freeRoot: boolean): void;
  /** Every present leaf: (gfn, level, pfn). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number) => void): void;
  /** kvm_arch_commit_memory_region(): the memslots now hold `pages` pages. */
  memslotPagesChanged(pages: number): void;
  /** The entry format of the tables: "ept", or "x86" (NPT and shadow paging). */
  readonly fmt: SpteFormat;
  /** What the tables translate: a gpa (TDP: one tree for the VM) or a gva (shadow paging: a tree per guest page-table root). */
  readonly translates: "gpa" | "gva";
  /** The root the tables start at for the guest tables rooted at gfn `pgd` (TDP: the VM's one root), or null if no vCPU holds one. */
  rootFor(pgd: number): MmuRoot | null;
  /** The MMU's own invariants (counts against the tables, rmaps, links): what is wrong, or nothing. For checkers. */
  checkInvariants(): string[];
}

/** The top table of an MMU's tree: its host frame and level. */
export interface MmuRoot {
  readonly table: number;
  readonly level: number;
}

/**
 * The per-vCPU side of an MMU (vcpu->arch.mmu and the exits it takes), one chosen when the
 * vCPU is created. Accesses return XLATE_OK, XLATE_GUEST_PF (access() only) or VCPU_FAILED;
 * the table reads and writes return a host frame, KERNEL_WRITE_EMULATED or VCPU_FAILED.
 */
export interface VcpuMmu {
  /** The hardware MMU the vCPU runs on. */
  readonly hw: HwMmu;
  /** A guest access to gva (hpa in hw.hpa). */
  access(gva: number, acc: number): number;
  /** A guest-physical access by the guest kernel (hpa in hw.hpa). */
  physAccess(gpa: number, acc: number): number;
  /** The guest kernel reads guest RAM at gpa (its page tables). */
  readTable(gpa: number): number;
  /** The guest kernel writes guest RAM at gpa: an 8-byte table entry (`ptWrite`) or a page clear or copy. */
  writeTable(gpa: number, ptWrite: boolean, lo: number, hi: number): number;
  /** The guest's MOV to CR3. */
  setCr3(rootGfn: number, pcid: number, noFlush: boolean): number;
  /** The guest's INVLPG. */
  invlpg(gva: number): number;
  /** The guest's full local flush: a MOV to CR3 of the CR3 it has (native_flush_tlb_local). */
  flushTlb(): number;
  /** KVM_SET_SREGS's CR3, no exit. */
  setSregsCr3(rootGfn: number, pcid: number): void;
  /** kvm_make_request(KVM_REQ_TLB_FLUSH). */
  requestTlbFlush(): void;
  /** kvm_make_request(KVM_REQ_MMU_FREE_OBSOLETE_ROOTS). */
  requestFreeObsoleteRoots(): void;
  /** kvm_mmu_unload(): the vCPU's roots go. */
  unload(): void;
  /** VM entry around an exit that is not an MMU fault: requests serviced, guest mode. False if it failed. */
  enter(): boolean;
  /**
   * KVM_PRE_FAULT_MEMORY's one attempt at gpa (kvm_tdp_map_page()), as when the vCPU runs while
   * another CPU holds an invalidation open: the RET_PF_* code, without the retry loop.
   */
  preFaultMemory(gpa: number, write: boolean): number;
  /** The frame of the guest's page-table root, as its last CR3 load gave it. */
  guestRootGfn(): number;
  /**
   * The gfn the vCPU's last access to gva reached, without side effects: the hardware's gpa
   * under EPT/NPT, the gfn the current root's spte shadows under shadow paging (-1: none now).
   */
  accessedGfn(gva: number): number;
}
