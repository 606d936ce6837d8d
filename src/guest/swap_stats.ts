// SPDX-License-Identifier: MIT
// The guest's reclaim and swap counters (guest/vmscan.ts, guest/swap_state.ts), declared once.
// A table of their own so that a guest without swap reports none of them (no figure moves).

import { type CounterDecls, type Counters, counterList, counterStorage, zeroCounters } from "../hw/counters.js";

export const GUEST_SWAP_STATS = {
  pswpin: { kind: "cumulative", unit: "pages", description: "Pages the guest read from its swap device (swap_read_folio)." },
  pswpout: { kind: "cumulative", unit: "pages", description: "Pages the guest wrote to its swap device (swap_writepage)." },
  pgscan_kswapd: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages the guest's kswapd took off its inactive lists to consider (shrink_inactive_list).",
  },
  pgscan_direct: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages the guest's direct reclaim took off its inactive lists to consider (shrink_inactive_list).",
  },
  pgsteal_kswapd: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages the guest's kswapd freed (anonymous swapped out, or clean file).",
  },
  pgactivate: { kind: "cumulative", unit: "pages", description: "Guest pages moved to an active list (referenced twice)." },
  pgdeactivate: { kind: "cumulative", unit: "pages", description: "Guest pages moved from the active to the inactive anon list." },
  workingset_refault_anon: {
    kind: "cumulative",
    unit: "pages",
    description: "Guest anonymous pages faulted back in from swap after reclaim evicted them (workingset_refault).",
  },
  nr_swap_pages: { kind: "instant", unit: "pages", description: "Free slots on the guest's swap device (get_nr_swap_pages)." },
  nr_active_anon: { kind: "instant", unit: "pages", description: "Guest pages on the active anon LRU list." },
  nr_inactive_anon: { kind: "instant", unit: "pages", description: "Guest pages on the inactive anon LRU list." },
  kswapd_wakeups: {
    kind: "cumulative",
    unit: "events",
    description: "Times the guest's kswapd was woken (free below the low watermark).",
    kernel: false,
  },
  swapout_host_swapins: {
    kind: "cumulative",
    unit: "pages",
    description:
      "Double paging: host swap-ins that QEMU's reads of guest pages being swapped out by the guest caused (the host had swapped out the page the guest chose).",
    kernel: false,
  },
} as const satisfies CounterDecls;

export const GUEST_SWAP_COUNTERS = counterList(GUEST_SWAP_STATS);

export type GuestSwapStats = Counters<typeof GUEST_SWAP_STATS>;

export const newGuestSwapStats: () => GuestSwapStats = counterStorage(zeroCounters(GUEST_SWAP_STATS));
