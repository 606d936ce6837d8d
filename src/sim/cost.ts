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
