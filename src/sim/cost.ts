// SPDX-License-Identifier: MIT
// The cycle cost model: a cost per event, defaults from published measurements (each with
// its source), overridable by a scenario's `cost:` map. Totals are computed from the event
// counts, so the breakdown always sums to the total and changing one cost changes the total
// by exactly that cost times its count.

/** The clock the cost model's cycles are of: a 3 GHz core (as the sources quoted below assume). */
export const MODEL_HZ = 3e9;

export interface CostEvent {
  name: string;
  cycles: number;
  /** What many of them are, for the run's summary ("40% in host page faults"). */
  phrase: string;
  /** What one event is. */
  description: string;
  /** Where the default comes from. */
  source: string;
}

export const COST_EVENTS: readonly CostEvent[] = [
  {
    name: "tlb_hit",
    phrase: "TLB hits",
    cycles: 1,
    description: "a translation served by the TLB",
    source: "an L1/L2 TLB hit is hidden in the load pipeline (0-1 extra cycles; Intel optimization manual)",
  },
  {
    name: "table_read",
    phrase: "page-walk table reads",
    cycles: 20,
    description: "one paging-structure read of a walk (guest or nested)",
    source:
      "walk references mostly hit the data caches: 1.5 memory accesses per native walk with PWCs ('Every Walk's a Hit', ASPLOS 2022); ~20 cycles is an L2 hit",
  },
  {
    name: "data_access",
    phrase: "the accesses themselves",
    cycles: 4,
    description: "the access itself",
    source: "L1 data-cache hit latency, 4-5 cycles on current x86 cores",
  },
  {
    name: "vm_exit",
    phrase: "VM exits and entries",
    cycles: 1100,
    description: "a VM exit and the VM entry that resumes the guest",
    source: "page-fault exit 466-531 cycles on Ivy Bridge-Broadwell (Bugnion, Nieh, Tsafrir 2017, table 4.3), twice for exit + entry",
  },
  {
    name: "kvm_page_fault",
    phrase: "KVM's fault handling",
    cycles: 1500,
    description: "KVM's software fault handling (kvm_mmu_page_fault to install), excluding the host fault",
    source: "rough: the KVM_RUN round trip is ~2,530 cycles of which ~1,350 around VMRUN (LKML, Dec 2020); the rest is handler work",
  },
  {
    name: "host_fault",
    phrase: "host page faults",
    cycles: 3241,
    description: "a host page fault (handle_mm_fault), zero page or new page",
    source: "median first-read fault, Core i7 11th gen, Linux 6.6 (personal measurement blog, low authority)",
  },
  {
    name: "swap_in",
    phrase: "swap-ins",
    cycles: 5500,
    description: "reading one page back from swap",
    source: "zram lz4: 1.84 us per 4 KiB page at 3 GHz (kernel patch set skipping the swap cache for synchronous devices)",
  },
  {
    name: "swap_out",
    phrase: "swap-outs",
    cycles: 5500,
    description: "writing one page to swap",
    source: "taken equal to swap-in (zram compresses at a similar rate)",
  },
  {
    name: "tlb_flush",
    phrase: "TLB flushes",
    cycles: 500,
    description: "a TLB flush KVM performs for a vCPU (INVEPT / INVVPID) and the refills it causes soon after",
    source: "rough: INVEPT itself is ~100s of cycles; refills are counted as walks separately",
  },
  {
    name: "gpte_access",
    phrase: "KVM's software walks of guest page tables",
    cycles: 50,
    description: "a guest page-table entry KVM reads or writes in software (shadow paging: its walks, re-checks, resyncs)",
    source:
      "rough: a guest-memory access through the memslot (gfn -> hva) and a user-space load in the kernel, about an L2 hit plus the lookup",
  },
  {
    name: "emulate",
    phrase: "emulating writes to guest page tables",
    cycles: 2500,
    description: "emulating the instruction that wrote a write-protected guest page table (x86_emulate_instruction), beyond the exit",
    source:
      "rough: a trapped PTE write cost 12,733 cycles on first-generation VT-x (Adams and Agesen, ASPLOS 2006); exits are ~4x cheaper since (Bugnion et al. 2017), leaving ~2,500 for decode and emulation",
  },
  {
    name: "guest_page_fault",
    phrase: "guest page faults",
    cycles: 1093,
    description: "a page fault handled by the guest kernel (its own demand paging)",
    source: "native pgfault nanobenchmark, Adams and Agesen, ASPLOS 2006",
  },
  {
    name: "ksm_scan_page",
    phrase: "ksmd scanning",
    cycles: 1200,
    description: "ksmd scanning one page: calc_checksum() of 4 KiB and the tree comparisons (host CPU)",
    source:
      "memvirt's own: XXH64 hashes ~13 GB/s (xxHash benchmarks), ~900 cycles for 4 KiB at 3 GHz, plus a few early-exit memcmp_pages() in the trees",
  },
  // ---- the dirty-log ioctls' own work (kvm/dirty_log.ts, kvm/dirty_log_work.ts); priced by `memvirt selftest dirty_log_perf`
  {
    name: "kvm_ioctl",
    phrase: "KVM ioctl round trips",
    cycles: 300,
    description: "a KVM ioctl's entry and return (the syscall, fdget, copy of its argument)",
    source: "rough: a syscall round trip with the usual mitigations, ~100 ns at 3 GHz (as selftest_access_tracking.ts's SYSCALL_CYCLES)",
  },
  {
    name: "memslot_update",
    phrase: "memslot updates",
    cycles: 600000,
    description:
      "KVM_SET_USER_MEMORY_REGION changing a slot's flags: the new memslot array and synchronize_srcu_expedited() (kvm_set_memslot())",
    source:
      "dirty_log_perf_test on x86, 1 vCPU, 1 GiB, initially-all-set (no spte is touched): 'Enabling dirty logging time: 0.000198858s' (kselftest run log, see docs/selftests.md)",
  },
  {
    name: "dirty_bitmap_word",
    phrase: "dirty-bitmap words",
    cycles: 7,
    description: "one unsigned long of a slot's dirty bitmap read (and exchanged) and copied to user space",
    source:
      "same run: 'Iteration 2 get dirty log time: 0.000008981s' for the 4,096 words of a 1 GiB slot with manual protect, ~6.6 cycles a word",
  },
  {
    name: "spte_wrprot",
    phrase: "sptes write-protected for dirty logging",
    cycles: 390,
    description: "one leaf spte write-protected (or its D bit cleared) by dirty logging, with its share of the 64-page walks",
    source: "same run: 'Iteration 2 clear dirty log time: 0.034301493s' re-protecting 262,144 pages, ~393 cycles a page",
  },
  {
    name: "huge_split",
    phrase: "eager huge-page splits",
    cycles: 30000,
    description: "one huge leaf split into 512 smaller leaves by eager page splitting (tdp_mmu_split_huge_page())",
    source: "memvirt's own: 512 spte writes at ~50 cycles and a page-table page from the split cache",
  },
  {
    name: "huge_recover",
    phrase: "huge pages recovered",
    cycles: 25000,
    description:
      "one table of 512 leaves replaced by a huge leaf when logging stops (kvm_mmu_recover_huge_pages()), or one collapsible spte zapped (shadow)",
    source: "memvirt's own: 512 spte reads and zaps at ~50 cycles and the table freed",
  },
  {
    name: "kvm_flush_remote_tlbs",
    phrase: "remote TLB flush requests",
    cycles: 1000,
    description: "kvm_flush_remote_tlbs() made by an ioctl: KVM_REQ_TLB_FLUSH on every vCPU (the vCPUs' own flushes are tlb_flush)",
    source: "memvirt's own: kvm_make_all_cpus_request() over a few vCPUs, none in guest mode during the ioctl",
  },
  // ---- end of the dirty-log ioctls
  {
    name: "userfault",
    phrase: "userfaultfd round trips",
    cycles: 3100,
    description:
      "a missing-page fault handed to a userfaultfd reader and resolved with UFFDIO_COPY: the faulting thread sleeps, the reader wakes, reads the message, places the page and wakes it (beyond the host fault itself)",
    source:
      "touching 1 GiB of uffd-registered memory ran at ~1.3 GiB/s against ~2.0 GiB/s unregistered, ~1 us (3,100 cycles) more a 4 KiB page (e2b-dev/infra pull request 2974)",
  },
  // ---- zswap (host.zswap): 4 KiB at the benchmark's throughput, in cycles of its 4.9 GHz clock
  {
    name: "zswap_lz4_compress",
    phrase: "zswap compression (lz4)",
    cycles: 27100,
    description: "zswap_store() compressing one 4 KiB page with lz4 (host CPU, in reclaim)",
    source:
      "lz4 1.9.3 compresses 740 MB/s: 5.5 us per 4 KiB, zstd README benchmark table (lzbench, Silesia corpus, Core i7-9700K @ 4.9 GHz)",
  },
  {
    name: "zswap_lz4_decompress",
    phrase: "zswap decompression (lz4)",
    cycles: 4460,
    description: "zswap_load() or writeback decompressing one page with lz4: a zswap hit costs this instead of a swap read",
    source:
      "lz4 1.9.3 decompresses 4500 MB/s: 0.91 us per 4 KiB, zstd README benchmark table (lzbench, Silesia corpus, Core i7-9700K @ 4.9 GHz)",
  },
  {
    name: "zswap_zstd_compress",
    phrase: "zswap compression (zstd)",
    cycles: 37900,
    description: "zswap_store() compressing one 4 KiB page with zstd (host CPU, in reclaim)",
    source:
      "zstd 1.5.1 -1 compresses 530 MB/s: 7.7 us per 4 KiB, zstd README benchmark table (lzbench, Silesia corpus, Core i7-9700K @ 4.9 GHz); the kernel runs level 3, a little slower",
  },
  {
    name: "zswap_zstd_decompress",
    phrase: "zswap decompression (zstd)",
    cycles: 11800,
    description: "zswap_load() or writeback decompressing one page with zstd",
    source:
      "zstd 1.5.1 -1 decompresses 1700 MB/s: 2.4 us per 4 KiB, zstd README benchmark table (lzbench, Silesia corpus, Core i7-9700K @ 4.9 GHz)",
  },
];

export type CostTable = Record<string, number>;

export function defaultCostTable(): CostTable {
  return Object.fromEntries(COST_EVENTS.map((e) => [e.name, e.cycles]));
}

/** The default table with a scenario's overrides; unknown names are an error naming the known ones. */
export function costTable(overrides: Record<string, number>): CostTable {
  const t = defaultCostTable();
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in t)) throw new RangeError(`cost.${k}: no such event; known events: ${Object.keys(t).join(", ")}`);
    if (!(v >= 0)) throw new RangeError(`cost.${k}: must be a non-negative number of cycles, not ${v}`);
    t[k] = v;
  }
  return t;
}

export interface CostResult {
  cycles: number;
  /** Cycles by event. */
  breakdown: Record<string, number>;
  /** Event counts the cycles came from. */
  counts: Record<string, number>;
}

/** Cycles for `counts` (event name -> count) under `table`. */
export function applyCost(table: CostTable, counts: Record<string, number>): CostResult {
  const breakdown: Record<string, number> = {};
  let cycles = 0;
  for (const [k, c] of Object.entries(counts)) {
    const v = (table[k] ?? 0) * c;
    breakdown[k] = v;
    cycles += v;
  }
  return { cycles, breakdown, counts };
}
