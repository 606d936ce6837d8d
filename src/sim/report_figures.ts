// SPDX-License-Identifier: MIT
// The report's own figures, declared once like the layers' counters: what a report shows of
// QEMU's process, the hardware figures derived from the counters, the VMM's tables of a guest
// without a kernel, and the checker's verdict. Printers and the README read these.

import type { CounterDecls } from "../hw/counters.js";

/** `vms[].qemu`: QEMU's process, from its host mm (in bytes where the mm counts pages). */
export const QEMU_FIGURES = {
  rssBytes: {
    kind: "instant",
    unit: "bytes",
    description: "resident guest RAM: anonymous and hugetlb pages mapped in QEMU's address space",
  },
  rssZeroPageBytes: {
    kind: "instant",
    unit: "bytes",
    description: "guest RAM read but never written: mapped to the shared zero page (not in rssBytes)",
    kernel: false,
  },
  minFlt: { kind: "cumulative", unit: "events", description: "host faults on QEMU's mm that needed no I/O (min_flt)" },
  majFlt: { kind: "cumulative", unit: "events", description: "host faults on QEMU's mm that read swap (maj_flt)" },
} as const satisfies CounterDecls;

/** `vms[].hw` beside the hardware counters: figures derived from them. */
export const HW_FIGURES = {
  tableReadsPerWalk: {
    kind: "instant",
    unit: "references",
    description: "guest plus nested table reads per walk, the measured cost of a TLB miss (a cold 4-level walk under EPT/NPT reads 24)",
  },
} as const satisfies CounterDecls;

/** `vms[].hw.references`: every memory reference of the vCPUs, by kind. */
export const REFERENCE_FIGURES = {
  guestTable: { kind: "cumulative", unit: "references", description: "guest page-table reads (guestTableReads)" },
  nestedTable: { kind: "cumulative", unit: "references", description: "EPT/NPT table reads (nestedTableReads)" },
  data: { kind: "cumulative", unit: "references", description: "the accesses themselves (dataAccesses)" },
} as const satisfies CounterDecls;

/** `vms[].guest` of a guest without a kernel, beside its guest code's counters: what the VMM built (selftests' virt_map()). */
export const VIRT_MAP_FIGURES = {
  virt_map_tables: {
    kind: "instant",
    unit: "pages",
    description: "Page-table pages the VMM wrote into guest RAM before the run (virt_pg_map()).",
  },
  virt_map_entries: { kind: "instant", unit: "entries", description: "Page-table entries the VMM wrote into those pages." },
} as const satisfies CounterDecls;

/** `check`: the checker's verdict (readDigest, a hash of what the guest read, is no count). */
export const CHECK_FIGURES = {
  dataErrors: { kind: "cumulative", unit: "events", description: "Guest reads that did not return what was written last." },
  invariantViolations: {
    kind: "cumulative",
    unit: "events",
    description: "Broken invariants: stale EPT/NPT leaves, accesses that reached a free frame.",
  },
  valuesRead: { kind: "cumulative", unit: "references", description: "Guest reads whose value the checker compared." },
} as const satisfies CounterDecls;

/** `vms[].qemu` of a report or phase: QEMU's RSS (QemuVm.rss(), bytes) and its mm's fault counts. */
export function qemuFigures(
  rss: { rss: number; rssZeroPage: number },
  mm: { minFlt: number; majFlt: number },
): { rssBytes: number; rssZeroPageBytes: number; minFlt: number; majFlt: number } {
  return { rssBytes: rss.rss, rssZeroPageBytes: rss.rssZeroPage, minFlt: mm.minFlt, majFlt: mm.majFlt };
}
