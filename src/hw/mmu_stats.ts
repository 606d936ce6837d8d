// SPDX-License-Identifier: MIT
// The MMU's event counters, declared once: plain names, as the kernel has none for these.

import { type CounterDecls, type Counters, counterList, counterStorage, zeroCounters } from "./counters.js";

export const HW_STATS = {
  tlbHits: { kind: "cumulative", unit: "events", description: "translations served by the TLB" },
  tlbMisses: { kind: "cumulative", unit: "events", description: "translations that needed a page walk" },
  walks: {
    kind: "cumulative",
    unit: "events",
    description: "page walks started (1D natively or over shadow tables, 2D under EPT/NPT)",
  },
  guestTableReads: {
    kind: "cumulative",
    unit: "references",
    description: "reads of guest paging-structure entries (natively, of any paging-structure entry)",
  },
  nestedTableReads: {
    kind: "cumulative",
    unit: "references",
    description: "reads of EPT/NPT entries while translating guest-physical addresses",
  },
  adWrites: { kind: "cumulative", unit: "events", description: "guest paging-structure entries whose A or D bit the walker set" },
  nestedAdWrites: { kind: "cumulative", unit: "events", description: "EPT/NPT entries whose A or D bit the walker set" },
  pscHits: { kind: "cumulative", unit: "events", description: "walks that started below the root thanks to a paging-structure cache" },
  pscMisses: { kind: "cumulative", unit: "events", description: "walks that started at the root" },
  nestedTlbHits: { kind: "cumulative", unit: "events", description: "guest-physical translations served by the nested TLB" },
  nestedTlbMisses: { kind: "cumulative", unit: "events", description: "guest-physical translations that walked EPT/NPT" },
  nestedPscHits: { kind: "cumulative", unit: "events", description: "nested walks that started below the EPT/NPT root" },
  nestedPscMisses: { kind: "cumulative", unit: "events", description: "nested walks that started at the EPT/NPT root" },
  guestPageFaults: { kind: "cumulative", unit: "events", description: "translations that stopped with a guest #PF" },
  eptViolations: { kind: "cumulative", unit: "events", description: "translations that stopped with an EPT violation" },
  eptMisconfigs: { kind: "cumulative", unit: "events", description: "translations that stopped with an EPT misconfiguration" },
  npfs: { kind: "cumulative", unit: "events", description: "translations that stopped with an AMD #NPF" },
  cr3Loads: { kind: "cumulative", unit: "events", description: "MOV to CR3 executed" },
  invlpg: { kind: "cumulative", unit: "events", description: "INVLPG executed" },
  invpcid: { kind: "cumulative", unit: "events", description: "INVPCID executed" },
  invvpid: { kind: "cumulative", unit: "events", description: "INVVPID executed" },
  invept: { kind: "cumulative", unit: "events", description: "INVEPT executed" },
  contextFlushes: {
    kind: "cumulative",
    unit: "events",
    description: "invalidations that dropped every non-global (or every) entry of a context",
  },
  pmlEntries: {
    kind: "cumulative",
    unit: "entries",
    description: "guest-physical addresses written to the page-modification log (an EPT leaf's dirty flag set from 0 with PML on)",
  },
  dataAccesses: { kind: "cumulative", unit: "references", description: "the accesses themselves (TLB hits plus completed walks)" },
} as const satisfies CounterDecls;

export const HW_COUNTERS = counterList(HW_STATS);

export type HwCounters = Counters<typeof HW_STATS>;

const { dataAccesses: _, ...STORED } = HW_STATS;

/** One MMU's counters, as fields the hot paths increment. */
export type HwStats = Counters<typeof STORED> & {
  /** dataAccesses is kept as the walks' half, to spare the TLB hit path a store. */
  walkDataAccesses: number;
};

export const newHwStats: () => HwStats = counterStorage({ ...zeroCounters(STORED), walkDataAccesses: 0 });

/** The accesses themselves: every TLB hit and every walk that completed. */
export function hwDataAccesses(s: HwStats): number {
  return s.tlbHits + s.walkDataAccesses;
}

/** The declared counters of `s`, in declaration order (what a report carries). */
export function hwCounters(s: HwStats): HwCounters {
  const { walkDataAccesses: _w, ...stored } = s;
  return { ...stored, dataAccesses: hwDataAccesses(s) };
}

/** The counters of several MMUs (a VM's vCPUs), summed. */
export function sumHwCounters(list: readonly HwCounters[]): HwCounters {
  const out = zeroCounters(HW_STATS);
  const keys = Object.keys(out) as (keyof HwCounters)[];
  for (const c of list) for (const k of keys) out[k] += c[k];
  return out;
}
