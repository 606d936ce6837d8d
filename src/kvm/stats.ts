// SPDX-License-Identifier: MIT
// KVM's binary statistics (struct kvm_vm_stat, struct kvm_vcpu_stat; x86.c's descriptor
// tables), with the meaning the kernel gives them (reference section 5).

import type { CounterDesc } from "../hw/counters.js";

export class VmStat {
  remote_tlb_flush = 0;
  remote_tlb_flush_requests = 0;
  mmu_shadow_zapped = 0;
  mmu_pte_write = 0;
  mmu_pde_zapped = 0;
  mmu_flooded = 0;
  mmu_recycled = 0;
  mmu_cache_miss = 0;
  mmu_unsync = 0;
  pages_4k = 0;
  pages_2m = 0;
  pages_1g = 0;
  nx_lpage_splits = 0;
  max_mmu_rmap_size = 0;
  max_mmu_page_hash_collisions = 0;
  /** Not a kernel stat: EPT/NPT or shadow table pages allocated (host frames), now. */
  mmu_table_pages = 0;
  /** Not a kernel stat: fault handlers that retried because an invalidation raced them. */
  mmu_fault_retries = 0;
  /** Not a kernel stat: kvm->arch.n_used_mmu_pages, shadow pages in use (roots being freed included). */
  n_used_mmu_pages = 0;
  /** Not a kernel stat: kvm->arch.n_max_mmu_pages, the shadow-page limit (2 % of memslot pages, at least 64). */
  n_max_mmu_pages = 0;
}

export class VcpuStat {
  exits = 0;
  pf_taken = 0;
  pf_fixed = 0;
  pf_emulate = 0;
  pf_spurious = 0;
  pf_fast = 0;
  pf_mmio_spte_created = 0;
  pf_guest = 0;
  tlb_flush = 0;
  invlpg = 0;
  irq_exits = 0;
  /** Not a kernel stat: guest page-table entries KVM read in software (walks, gpte re-checks, resyncs, emulation). */
  gpte_reads = 0;
  /** Not a kernel stat: guest page-table entries KVM wrote (A/D cmpxchg of its walks, emulated writes). */
  gpte_writes = 0;
  /** Not a kernel stat: CR3 loads served by the current or a cached previous shadow root (fast_pgd_switch hits). */
  fast_pgd_switch = 0;
  /** Not a kernel stat: kvm_mmu_load() runs that had to (re)build the current shadow root. */
  mmu_root_loads = 0;
  /** Not a kernel stat: exits by reason (EPT_VIOLATION, EXCEPTION_NMI, CR_ACCESS, INVLPG, ...). */
  readonly exitReasons: Record<string, number> = {};
}

export const VM_COUNTERS: readonly CounterDesc[] = [
  {
    name: "remote_tlb_flush",
    kind: "cumulative",
    unit: "events",
    description: "kvm_flush_remote_tlbs() calls that had to interrupt a vCPU running the guest",
  },
  {
    name: "remote_tlb_flush_requests",
    kind: "cumulative",
    unit: "events",
    description: "kvm_flush_remote_tlbs() calls: every time KVM decided all vCPUs' TLBs must be flushed",
  },
  { name: "mmu_shadow_zapped", kind: "cumulative", unit: "events", description: "shadow pages prepared for zapping (shadow MMU only)" },
  {
    name: "mmu_pte_write",
    kind: "cumulative",
    unit: "events",
    description: "emulated guest writes seen while any indirect shadow page exists (shadow MMU only)",
  },
  {
    name: "mmu_pde_zapped",
    kind: "cumulative",
    unit: "events",
    description: "upper-level sptes zapped because the guest wrote a non-zero value over their gpte",
  },
  { name: "mmu_flooded", kind: "cumulative", unit: "events", description: "shadow pages zapped for misaligned writes or write flooding" },
  { name: "mmu_recycled", kind: "cumulative", unit: "events", description: "shadow pages zapped to stay under the shadow-page limit" },
  { name: "mmu_cache_miss", kind: "cumulative", unit: "events", description: "shadow-page lookups that found none and allocated one" },
  { name: "mmu_unsync", kind: "instant", unit: "pages", description: "shadow pages currently unsync" },
  { name: "pages_4k", kind: "instant", unit: "entries", description: "present 4 KiB leaf sptes (EPT/NPT or shadow), across all roots" },
  { name: "pages_2m", kind: "instant", unit: "entries", description: "present 2 MiB leaf sptes" },
  { name: "pages_1g", kind: "instant", unit: "entries", description: "present 1 GiB leaf sptes" },
  {
    name: "mmu_table_pages",
    kind: "instant",
    unit: "pages",
    description: "host frames holding EPT/NPT or shadow tables (memvirt; Linux counts them in SecPageTables)",
  },
  {
    name: "mmu_fault_retries",
    kind: "cumulative",
    unit: "events",
    description: "faults that returned RET_PF_RETRY because an invalidation ran between the sequence read and the install (memvirt)",
  },
];

export const VCPU_COUNTERS: readonly CounterDesc[] = [
  { name: "exits", kind: "cumulative", unit: "events", description: "every hardware VM exit" },
  {
    name: "pf_taken",
    kind: "cumulative",
    unit: "events",
    description: "MMU faults handed to KVM's page-fault handler (EPT violations, NPFs, intercepted #PFs)",
  },
  { name: "pf_fixed", kind: "cumulative", unit: "events", description: "faults that installed or upgraded an spte (RET_PF_FIXED)" },
  { name: "pf_emulate", kind: "cumulative", unit: "events", description: "faults resolved by emulating the instruction (RET_PF_EMULATE)" },
  {
    name: "pf_spurious",
    kind: "cumulative",
    unit: "events",
    description: "faults that found the access already allowed (RET_PF_SPURIOUS)",
  },
  {
    name: "pf_fast",
    kind: "cumulative",
    unit: "events",
    description: "faults fixed without mmu_lock by fast_page_fault() (also in pf_fixed or pf_spurious)",
  },
  { name: "pf_mmio_spte_created", kind: "cumulative", unit: "events", description: "MMIO sptes installed" },
  { name: "pf_guest", kind: "cumulative", unit: "events", description: "#PF exceptions KVM injected into the guest" },
  {
    name: "tlb_flush",
    kind: "cumulative",
    unit: "events",
    description: "hardware TLB flushes KVM performed for this vCPU (requests serviced at entry)",
  },
  {
    name: "invlpg",
    kind: "cumulative",
    unit: "events",
    description: "emulated INVLPG / single-address INVPCID (intercepted under shadow paging only)",
  },
  {
    name: "irq_exits",
    kind: "cumulative",
    unit: "events",
    description: "exits on an external interrupt: here the IPIs of remote TLB flushes that found the vCPU in guest mode",
  },
];

/**
 * Counters of the shadow MMU that the kernel keeps as fields, not stats (memvirt adds them).
 * They are not in the README's generated tables yet: tools/readme.ts lists VM_COUNTERS and
 * VCPU_COUNTERS only.
 */
export const SHADOW_VM_COUNTERS: readonly CounterDesc[] = [
  {
    name: "n_used_mmu_pages",
    kind: "instant",
    unit: "pages",
    description: "shadow pages in use, kvm->arch.n_used_mmu_pages (memvirt; shadow MMU only)",
  },
  {
    name: "n_max_mmu_pages",
    kind: "instant",
    unit: "pages",
    description: "the shadow-page limit, kvm->arch.n_max_mmu_pages: 2 % of memslot pages, at least 64 (memvirt; shadow MMU only)",
  },
];

export const SHADOW_VCPU_COUNTERS: readonly CounterDesc[] = [
  {
    name: "gpte_reads",
    kind: "cumulative",
    unit: "references",
    description: "guest page-table entries KVM read in software: its walks, gpte re-checks, resyncs, emulation (memvirt; shadow only)",
  },
  {
    name: "gpte_writes",
    kind: "cumulative",
    unit: "references",
    description: "guest page-table entries KVM wrote: A/D updates of its walks (cmpxchg) and emulated writes (memvirt; shadow only)",
  },
  {
    name: "fast_pgd_switch",
    kind: "cumulative",
    unit: "events",
    description: "guest CR3 loads served by the current or a cached previous shadow root (memvirt; shadow only)",
  },
  {
    name: "mmu_root_loads",
    kind: "cumulative",
    unit: "events",
    description: "kvm_mmu_load() runs that looked up or built a shadow root for the guest's CR3 (memvirt; shadow only)",
  },
];

/** Every per-VM counter a report carries, the shadow MMU's included (for printers). */
export const ALL_VM_COUNTERS: readonly CounterDesc[] = [...VM_COUNTERS, ...SHADOW_VM_COUNTERS];
/** Every per-vCPU counter a report carries, the shadow MMU's included. */
export const ALL_VCPU_COUNTERS: readonly CounterDesc[] = [...VCPU_COUNTERS, ...SHADOW_VCPU_COUNTERS];
