// SPDX-License-Identifier: MIT
// zswap's counters (mm/zswap.c) under their kernel names, declared once: the /proc/vmstat
// events zswpin, zswpout, zswpwb and the swap core's zeromap events swpin_zero / swpout_zero
// (mm/page_io.c, Linux 6.13), then the /sys/kernel/debug/zswap files.

import { type CounterDecls, type Counters, counterList, zeroCounters } from "../hw/counters.js";

export const ZSWAP_STATS = {
  zswpout: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages zswap_store() compressed into the pool instead of writing them to swap.",
  },
  zswpin: { kind: "cumulative", unit: "pages", description: "Pages zswap_load() decompressed at swap-in: a zswap hit, no I/O." },
  zswpwb: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages written back from the pool to the swap device (zswap_writeback_entry()).",
  },
  swpout_zero: {
    kind: "cumulative",
    unit: "pages",
    description: "Zero-filled pages swap_writepage() recorded in the swap device's zeromap: no store, no I/O.",
  },
  swpin_zero: { kind: "cumulative", unit: "pages", description: "Swap-ins served from the zeromap: the page is zero-filled, no I/O." },
  pool_total_size: { kind: "instant", unit: "bytes", description: "Memory the compressed pool takes (zsmalloc pages x 4 KiB)." },
  stored_pages: { kind: "instant", unit: "pages", description: "Compressed pages in the pool (zswap_stored_pages)." },
  pool_limit_hit: {
    kind: "cumulative",
    unit: "events",
    description: "Stores that found the pool at max_pool_percent of RAM (zswap_check_limits()).",
  },
  written_back_pages: { kind: "cumulative", unit: "pages", description: "Pages the shrink worker wrote back to the swap device." },
  reject_reclaim_fail: {
    kind: "cumulative",
    unit: "events",
    description: "Writebacks that failed (the slot's page was back in the swap cache).",
  },
  reject_alloc_fail: { kind: "cumulative", unit: "events", description: "Stores rejected because no page was free for the pool." },
  zswap_pool_limit_rejects: {
    kind: "cumulative",
    unit: "events",
    description: "Stores rejected while the pool was full (zswap_pool_reached_full): the page went to the swap device.",
    kernel: false,
  },
} as const satisfies CounterDecls;

export type ZswapStats = Counters<typeof ZSWAP_STATS>;
export const ZSWAP_COUNTERS = counterList(ZSWAP_STATS);
export const newZswapStats = (): ZswapStats => zeroCounters(ZSWAP_STATS);
