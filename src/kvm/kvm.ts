// SPDX-License-Identifier: MIT
// A KVM virtual machine (struct kvm): memslots, the MMU that maps guest memory (the TDP MMU
// for EPT/NPT, or the shadow MMU for shadow paging), the vCPUs, the invalidation sequence
// that the fault path and the mmu_notifier share, and remote TLB flushes (virt/kvm/kvm_main.c).

import type { EventBus } from "../hw/events.js";
import type { TlbConfig } from "../hw/mmu.js";
import type { MmuCore } from "../hw/mmu_core.js";
import type { PhysMem } from "../hw/phys_mem.js";
import type { MmuNotifier, MmuNotifierRange, NotifierMm } from "../host/mmu_notifier.js";
import { type Memslot, Memslots } from "./memslot.js";
import type { KvmMmu, VcpuMmu } from "./mmu.js";
import { ShadowMmu } from "./shadow_mmu.js";
import { ShadowSync } from "./shadow_sync.js";
import { VmStat } from "./stats.js";
import { type MmuPageAllocator, TdpMmu } from "./tdp_mmu.js";
import { OUTSIDE_GUEST_MODE, Vcpu } from "./vcpu.js";
import { ShadowPagingVcpuMmu, TdpVcpuMmu } from "./vcpu_mmu.js";

/** What KVM asks of the host mm that backs guest RAM (hva_to_pfn() and friends), bound to the VMM's mm. */
export interface HostMmOps {
  /**
   * get_user_pages() of one page, faulting it in: the 4 KiB host frame backing `hva`, or a
   * negative value if the host could not provide one (out of memory, SIGBUS). `gupWritable`
   * then says whether the mapping is writable.
   */
  gup(hva: number, write: boolean): number;
  /** get_user_page_fast_only(): the frame only if `hva` is already mapped (and writable, for a write); else -1. */
  gupFast(hva: number, write: boolean): number;
  readonly gupWritable: boolean;
  /** host_pfn_mapping_level(): the level of the host leaf mapping `hva` (1, 2 or 3). */
  hostMappingLevel(hva: number): number;
  /** Why the last gup failed, in a sentence. */
  readonly lastError: string;
  /**
   * kvm_release_page_dirty(): the folio backing pfn is marked dirty (folio_mark_dirty()), as KVM
   * does (Linux >= 6.13) for every page it maps with a host-writable spte, before the guest writes.
   */
  markDirty(pfn: number): void;
}

export type TdpMode = "ept" | "npt";
/** How guest memory is translated: nested paging (EPT, NPT) or shadow page tables. */
export type MmuMode = TdpMode | "shadow";

export interface KvmOptions {
  mode: MmuMode;
  levels: 4 | 5;
  /** EPT accessed/dirty flags (EPTP bit 6); NPT always has them. */
  eptAd: boolean;
  vcpus: number;
  /** The vCPUs' TLB geometry (default: Intel Golden Cove's). */
  tlb?: TlbConfig;
  /** The MMU implementation the vCPUs run on: the wasm core (default) or the JS reference. */
  mmuCore?: MmuCore;
}

/** The points of kvm_tdp_page_fault() at which another agent may run (see tdp_fault.ts). */
export type FaultRacePoint = "before-faultin" | "after-faultin";

export class Kvm {
  readonly memslots = new Memslots();
  readonly stats = new VmStat();
  readonly vcpus: Vcpu[] = [];
  /** The TDP MMU (EPT/NPT), or null under shadow paging. */
  readonly tdpMmu: TdpMmu | null;
  /** The shadow MMU and its unsync machinery (shadow paging), or null. */
  readonly shadow: ShadowMmu | null;
  readonly shadowSync: ShadowSync | null;
  /** The MMU in use, whichever it is (the operations the notifier and the VM need). */
  readonly mmu: KvmMmu;
  // The invalidation protocol (kvm->mmu_invalidate_*).
  mmuInvalidateSeq = 0;
  mmuInvalidateInProgress = 0;
  mmuInvalidateRangeStart = 0;
  mmuInvalidateRangeEnd = 0;
  /** The vCPU whose exit KVM is handling now (outside guest mode), or null in host context. */
  currentVcpu: Vcpu | null = null;
  /** The scheduler's hook into the fault path's race points (null: the fault runs straight through). */
  racePoint: ((vcpu: Vcpu, point: FaultRacePoint, gfn: number) => void) | null = null;
  /** Debug switch: skip the invalidation re-check before install (to show what it prevents). */
  debugSkipSeqCheck = false;
  /** Sptes installed for a page an invalidation had already taken (only possible with debugSkipSeqCheck). */
  staleInstalls = 0;
  /** What the last stale install was (the reason later faults that raced fail with). */
  staleReason = "";
  /** The mmu_notifier KVM registers on the VMM's mm (kvm_mmu_notifier_ops). */
  readonly notifier: MmuNotifier;

  constructor(
    readonly name: string,
    readonly mem: PhysMem,
    readonly host: HostMmOps,
    alloc: MmuPageAllocator,
    readonly opts: KvmOptions,
    readonly bus: EventBus,
  ) {
    let createVcpuMmu: (vcpu: Vcpu) => VcpuMmu;
    if (opts.mode === "shadow") {
      this.tdpMmu = null;
      const shadow = new ShadowMmu(mem, alloc, this.memslots, host, this.stats, bus, {
        flushRemoteTlbs: () => this.flushRemoteTlbs(),
        requestFreeObsoleteRoots: () => {
          for (const v of this.vcpus) v.archMmu.requestFreeObsoleteRoots();
        },
      });
      const sync = new ShadowSync(shadow);
      this.shadow = shadow;
      this.shadowSync = sync;
      this.stats.n_max_mmu_pages = shadow.nMaxMmuPages;
      this.mmu = shadow;
      createVcpuMmu = (v) => new ShadowPagingVcpuMmu(v, shadow, sync);
    } else {
      const ad = opts.mode === "npt" ? true : opts.eptAd;
      const tdp = new TdpMmu(mem, alloc, opts.mode === "ept" ? "ept" : "x86", opts.levels, ad, this.stats, bus);
      const mode = opts.mode;
      this.tdpMmu = tdp;
      this.shadow = null;
      this.shadowSync = null;
      this.mmu = tdp;
      createVcpuMmu = (v) => new TdpVcpuMmu(v, tdp, mode);
    }
    for (let i = 0; i < opts.vcpus; i++) this.vcpus.push(new Vcpu(this, i, createVcpuMmu));
    this.notifier = new KvmMmuNotifier(this);
  }

  /** The TDP MMU; only under EPT/NPT. */
  get tdp(): TdpMmu {
    if (this.tdpMmu === null) throw new Error(`${this.name}: no TDP MMU under shadow paging (use kvm.shadow)`);
    return this.tdpMmu;
  }

  /** KVM_SET_USER_MEMORY_REGION; the shadow-page limit follows the memslots (kvm_arch_commit_memory_region). */
  addMemslot(slot: Memslot): void {
    this.memslots.add(slot);
    this.mmu.memslotPagesChanged(this.memslots.slots.reduce((n, s) => n + s.npages, 0));
  }

  /** Every present leaf of the MMU in use: (gfn, level, pfn). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number) => void): void {
    this.mmu.forEachLeaf(fn);
  }

  /** kvm_unmap_gfn_range(): zaps the leaves mapping [gfnStart, gfnEnd); returns how many. */
  unmapGfnRange(gfnStart: number, gfnEnd: number): number {
    return this.mmu.unmapGfnRange(gfnStart, gfnEnd);
  }

  /** kvm_age_gfn() / kvm_test_age_gfn(). */
  ageGfnRange(gfnStart: number, gfnEnd: number, clear: boolean): boolean {
    return this.mmu.age(gfnStart, gfnEnd, clear);
  }

  /** kvm_mmu_zap_all(): every spte goes (the TDP root stays unless `freeRoot`). */
  zapAll(freeRoot: boolean): void {
    this.mmu.zapAll(freeRoot);
  }

  /**
   * kvm_flush_remote_tlbs(): KVM_REQ_TLB_FLUSH on every vCPU (kvm_make_all_cpus_request()), each
   * serviced at that vCPU's next VM entry, however many were made meanwhile. Only vCPUs in (or
   * exiting) guest mode get the IPI (kvm_request_needs_ipi(), not the vCPU running this code), and
   * remote_tlb_flush counts the flushes that sent one; the IPI kicks the vCPU out of the guest.
   */
  flushRemoteTlbs(): void {
    this.stats.remote_tlb_flush_requests++;
    let ipi = false;
    for (const v of this.vcpus) {
      v.requestTlbFlush();
      if (v !== this.currentVcpu && v.mode !== OUTSIDE_GUEST_MODE) {
        v.kick();
        ipi = true;
      }
    }
    if (ipi) this.stats.remote_tlb_flush++;
    if (this.bus.on) this.bus.emit("kvm.remote_tlb_flush", { vm: this.name, ipi: ipi ? 1 : 0 });
  }

  /** mmu_invalidate_retry_gfn(): an invalidation ran since `seq` or is running over gfn. */
  invalidationRaced(seq: number, gfn: number): boolean {
    if (this.mmuInvalidateInProgress > 0 && gfn >= this.mmuInvalidateRangeStart && gfn < this.mmuInvalidateRangeEnd) return true;
    return this.mmuInvalidateSeq !== seq;
  }

  /** kvm_mmu_invalidate_begin(): one more invalidation in progress; a first one starts an empty range. */
  invalidateBegin(): void {
    if (this.mmuInvalidateInProgress++ === 0) {
      this.mmuInvalidateRangeStart = Number.POSITIVE_INFINITY;
      this.mmuInvalidateRangeEnd = Number.NEGATIVE_INFINITY;
    }
  }

  /** kvm_mmu_invalidate_range_add(): widen the in-progress range to cover [gfnStart, gfnEnd). */
  invalidateRangeAdd(gfnStart: number, gfnEnd: number): void {
    this.mmuInvalidateRangeStart = Math.min(this.mmuInvalidateRangeStart, gfnStart);
    this.mmuInvalidateRangeEnd = Math.max(this.mmuInvalidateRangeEnd, gfnEnd);
  }

  /** kvm_mmu_invalidate_end(): the sequence moves on, faults may map the range again. */
  invalidateEnd(): void {
    this.mmuInvalidateSeq++;
    this.mmuInvalidateInProgress--;
  }

  /** kvm_vm_stat plus the sum over vCPUs of kvm_vcpu_stat, as SCENARIO.md's report wants. */
  statsWithVcpus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.stats)) out[k] = v as number;
    for (const vc of this.vcpus) {
      for (const [k, v] of Object.entries(vc.stats)) if (typeof v === "number") out[k] = (out[k] ?? 0) + v;
    }
    return out;
  }

  /** VM teardown: every spte and table goes. */
  destroy(): void {
    this.zapAll(true);
    for (const v of this.vcpus) v.archMmu.unload();
    this.flushRemoteTlbs();
  }
}

/** kvm_mmu_notifier_ops: the host mm tells KVM what is going away or being aged. */
class KvmMmuNotifier implements MmuNotifier {
  constructor(private readonly kvm: Kvm) {}

  /** kvm_mmu_notifier_invalidate_range_start(): zap the sptes of every overlapping slot, flush once. */
  invalidateRangeStart(range: MmuNotifierRange): void {
    const kvm = this.kvm;
    let begun = false;
    let zapped = 0;
    kvm.memslots.hvaRangeToGfns(range.start, range.end, (_slot, gfnStart, gfnEnd) => {
      // on_lock = kvm_mmu_invalidate_begin, run when the first overlapping slot takes mmu_lock.
      if (!begun) kvm.invalidateBegin();
      begun = true;
      kvm.invalidateRangeAdd(gfnStart, gfnEnd);
      zapped += kvm.unmapGfnRange(gfnStart, gfnEnd);
    });
    // No overlapping slot: nothing happens (and end finds none either).
    if (!begun) return;
    if (kvm.bus.on) kvm.bus.emit("kvm.notifier_zap", { vm: kvm.name, start: range.start, end: range.end, zapped });
    if (zapped > 0) kvm.flushRemoteTlbs();
  }

  /** kvm_mmu_notifier_invalidate_range_end(): seq++, in_progress--. */
  invalidateRangeEnd(range: MmuNotifierRange): void {
    const kvm = this.kvm;
    let overlaps = false;
    kvm.memslots.hvaRangeToGfns(range.start, range.end, () => {
      overlaps = true;
    });
    if (overlaps) kvm.invalidateEnd();
  }

  /** kvm_mmu_notifier_clear_flush_young(): no flush on x86 since 6.13 (KVM_ELIDE_TLB_FLUSH_IF_YOUNG). */
  clearFlushYoung(_mm: NotifierMm, start: number, end: number): boolean {
    return this.age(start, end, true);
  }

  clearYoung(_mm: NotifierMm, start: number, end: number): boolean {
    return this.age(start, end, true);
  }

  testYoung(_mm: NotifierMm, addr: number): boolean {
    return this.age(addr, addr + 1, false);
  }

  /** kvm_mmu_notifier_release(): kvm_flush_shadow_all(). */
  release(_mm: NotifierMm): void {
    this.kvm.zapAll(false);
    this.kvm.flushRemoteTlbs();
  }

  private age(start: number, end: number, clear: boolean): boolean {
    let young = false;
    this.kvm.memslots.hvaRangeToGfns(start, end, (_slot, gfnStart, gfnEnd) => {
      if (this.kvm.ageGfnRange(gfnStart, gfnEnd, clear)) young = true;
    });
    return young;
  }
}
