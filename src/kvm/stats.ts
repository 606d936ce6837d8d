// SPDX-License-Identifier: MIT
// KVM's binary statistics (struct kvm_vm_stat, struct kvm_vcpu_stat; x86.c's descriptor
// tables), declared once with the meaning the kernel gives them (reference section 5), and
// memvirt's own counters beside them (kernel: false).

import { type CounterDecls, type Counters, counterList, counterStorage, zeroCounters } from "../hw/counters.js";

export const VM_STATS = {
  remote_tlb_flush: {
    kind: "cumulative",
    unit: "events",
    description: "kvm_flush_remote_tlbs() calls that had to interrupt a vCPU running the guest",
  },
  remote_tlb_flush_requests: {
    kind: "cumulative",
    unit: "events",
    description: "kvm_flush_remote_tlbs() calls: every time KVM decided all vCPUs' TLBs must be flushed",
  },
  mmu_shadow_zapped: { kind: "cumulative", unit: "events", description: "shadow pages prepared for zapping (shadow MMU only)" },
  // issue 17: the notifier side of reclaim, counted apart from the TLB flushes it causes
  mmu_notifier_invalidations: {
    kind: "cumulative",
    unit: "events",
    description: "mmu_notifier invalidate_range_start() calls that overlapped a memslot (kvm_mmu_notifier_invalidate_range_start())",
    kernel: false,
  },
  mmu_notifier_zapped: {
    kind: "cumulative",
    unit: "entries",
    description: "leaf sptes those invalidations zapped (kvm_unmap_gfn_range(); the tables stay)",
    kernel: false,
  },
  mmu_pte_write: {
    kind: "cumulative",
    unit: "events",
    description: "emulated guest writes seen while any indirect shadow page exists (shadow MMU only)",
  },
  mmu_pde_zapped: {
    kind: "cumulative",
    unit: "events",
    description: "upper-level sptes zapped because the guest wrote a non-zero value over their gpte",
  },
  mmu_flooded: { kind: "cumulative", unit: "events", description: "shadow pages zapped for misaligned writes or write flooding" },
  mmu_recycled: { kind: "cumulative", unit: "events", description: "shadow pages zapped to stay under the shadow-page limit" },
  mmu_cache_miss: { kind: "cumulative", unit: "events", description: "shadow-page lookups that found none and allocated one" },
  mmu_unsync: { kind: "instant", unit: "pages", description: "shadow pages currently unsync" },
  pages_4k: { kind: "instant", unit: "entries", description: "present 4 KiB leaf sptes (EPT/NPT or shadow), across all roots" },
  pages_2m: { kind: "instant", unit: "entries", description: "present 2 MiB leaf sptes" },
  pages_1g: { kind: "instant", unit: "entries", description: "present 1 GiB leaf sptes" },
  nx_lpage_splits: {
    kind: "instant",
    unit: "pages",
    description: "huge pages split by the NX huge page mitigation (iTLB multihit); memvirt does not model it, so always 0",
  },
  max_mmu_rmap_size: {
    kind: "peak",
    unit: "entries",
    description: "the most sptes already in one gfn's rmap when another was added (shadow MMU only)",
  },
  max_mmu_page_hash_collisions: {
    kind: "peak",
    unit: "pages",
    description: "the most shadow pages of other gfns one lookup met in its hash bucket (shadow MMU only)",
  },
  mmu_table_pages: {
    kind: "instant",
    unit: "pages",
    description: "host frames holding EPT/NPT or shadow tables (Linux counts them in SecPageTables)",
    kernel: false,
  },
  dirty_pages_harvested: {
    kind: "cumulative",
    unit: "pages",
    description: "dirty pages the VMM collected: set bits KVM_GET_DIRTY_LOG returned, or entries collected from the dirty rings",
    kernel: false,
  },
  mmu_fault_retries: {
    kind: "cumulative",
    unit: "events",
    description: "faults that returned RET_PF_RETRY because an invalidation ran between the sequence read and the install",
    kernel: false,
  },
  n_used_mmu_pages: {
    kind: "instant",
    unit: "pages",
    description: "shadow pages in use, roots being freed included: kvm->arch.n_used_mmu_pages (shadow MMU only)",
    kernel: false,
  },
  n_max_mmu_pages: {
    kind: "instant",
    unit: "pages",
    description: "the shadow-page limit, kvm->arch.n_max_mmu_pages: 2 % of memslot pages, at least 64 (shadow MMU only)",
    kernel: false,
  },
} as const satisfies CounterDecls;

export const VCPU_STATS = {
  exits: { kind: "cumulative", unit: "events", description: "every hardware VM exit" },
  pf_taken: {
    kind: "cumulative",
    unit: "events",
    description: "MMU faults handed to KVM's page-fault handler (EPT violations, NPFs, intercepted #PFs)",
  },
  pf_fixed: { kind: "cumulative", unit: "events", description: "faults that installed or upgraded an spte (RET_PF_FIXED)" },
  pf_emulate: { kind: "cumulative", unit: "events", description: "faults resolved by emulating the instruction (RET_PF_EMULATE)" },
  pf_spurious: { kind: "cumulative", unit: "events", description: "faults that found the access already allowed (RET_PF_SPURIOUS)" },
  pf_fast: {
    kind: "cumulative",
    unit: "events",
    description: "faults fixed without mmu_lock by fast_page_fault() (also in pf_fixed or pf_spurious)",
  },
  pf_mmio_spte_created: { kind: "cumulative", unit: "events", description: "MMIO sptes installed" },
  pf_guest: { kind: "cumulative", unit: "events", description: "#PF exceptions KVM injected into the guest" },
  tlb_flush: {
    kind: "cumulative",
    unit: "events",
    description: "hardware TLB flushes KVM performed for this vCPU (requests serviced at entry)",
  },
  invlpg: {
    kind: "cumulative",
    unit: "events",
    description: "emulated INVLPG / single-address INVPCID (intercepted under shadow paging only)",
  },
  irq_exits: {
    kind: "cumulative",
    unit: "events",
    description: "exits on an external interrupt: here the IPIs of remote TLB flushes that found the vCPU in guest mode",
  },
  gpte_reads: {
    kind: "cumulative",
    unit: "references",
    description: "guest page-table entries KVM read in software: its walks, gpte re-checks, resyncs, emulation (shadow only)",
    kernel: false,
  },
  gpte_writes: {
    kind: "cumulative",
    unit: "references",
    description: "guest page-table entries KVM wrote: A/D updates of its walks (cmpxchg) and emulated writes (shadow only)",
    kernel: false,
  },
  fast_pgd_switch: {
    kind: "cumulative",
    unit: "events",
    description: "guest CR3 loads served by the current or a cached previous shadow root (shadow only)",
    kernel: false,
  },
  dirty_ring_full_exits: {
    kind: "cumulative",
    unit: "events",
    description: "KVM_EXIT_DIRTY_RING_FULL exits to the VMM: the vCPU's dirty ring reached its soft limit",
    kernel: false,
  },
  mmu_root_loads: {
    kind: "cumulative",
    unit: "events",
    description: "kvm_mmu_load() runs that looked up or built a shadow root for the guest's CR3 (shadow only)",
    kernel: false,
  },
} as const satisfies CounterDecls;

export const VM_COUNTERS = counterList(VM_STATS);
export const VCPU_COUNTERS = counterList(VCPU_STATS);

export type VmStat = Counters<typeof VM_STATS>;

/** The per-vCPU counters, and exits by reason (EPT_VIOLATION, EXCEPTION_NMI, CR_ACCESS, INVLPG, ...), a breakdown of `exits`. */
export type VcpuStat = Counters<typeof VCPU_STATS> & { readonly exitReasons: Record<string, number> };

export const newVmStat: () => VmStat = counterStorage(zeroCounters(VM_STATS));
export const newVcpuStat: () => VcpuStat = counterStorage({ ...zeroCounters(VCPU_STATS), exitReasons: {} });
