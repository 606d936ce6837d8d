// SPDX-License-Identifier: MIT
// KSM's counters under their /sys/kernel/mm/ksm names (mm/ksm.c), declared once. The gauges
// are kept by ksm.ts as the kernel keeps them; pages_volatile is derived as ksm.c's
// pages_volatile_show() derives it.

import { type CounterDecls, type Counters, counterList, zeroCounters } from "../hw/counters.js";

export const KSM_STATS = {
  pages_shared: { kind: "instant", unit: "pages", description: "KSM pages in the stable tree (ksm_pages_shared): one per merged content." },
  pages_sharing: {
    kind: "instant",
    unit: "pages",
    description: "Further page slots mapping those KSM pages (ksm_pages_sharing): the pages saved.",
  },
  pages_unshared: {
    kind: "instant",
    unit: "pages",
    description: "Pages in the unstable tree: unchanged since the last scan, no twin yet.",
  },
  pages_volatile: {
    kind: "instant",
    unit: "pages",
    description: "rmap_items neither shared, sharing nor unshared: pages whose checksum changed since the last scan.",
  },
  full_scans: { kind: "cumulative", unit: "events", description: "Completed scans of all mergeable memory." },
  pages_scanned: { kind: "cumulative", unit: "pages", description: "Pages ksmd has scanned (ksm_pages_scanned)." },
  ksm_zero_pages: {
    kind: "instant",
    unit: "pages",
    description: "PTEs that use_zero_pages pointed at the zero page (ksm_zero_pages); dropped when unmapped or written.",
  },
  ksm_rmap_items: { kind: "instant", unit: "entries", description: "rmap_items in use: one per scanned mergeable page.", kernel: false },
  ksm_merges: {
    kind: "cumulative",
    unit: "events",
    description: "Pages replaced by a KSM page or the zero page (replace_page).",
    kernel: false,
  },
  ksm_cow_breaks: {
    kind: "cumulative",
    unit: "events",
    description: "Writes to a KSM page or KSM zero page that copied it (do_wp_page -> wp_page_copy).",
    kernel: false,
  },
} as const satisfies CounterDecls;

export type KsmStats = Counters<typeof KSM_STATS>;
export const KSM_COUNTERS = counterList(KSM_STATS);
export const newKsmStats = (): KsmStats => zeroCounters(KSM_STATS);
