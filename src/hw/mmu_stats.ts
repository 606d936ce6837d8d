// SPDX-License-Identifier: MIT
// The MMU's event counters, declared once with their descriptions.

import type { CounterDesc } from "./counters.js";

/** Hardware event counters; plain names, as the kernel has none for these. */
export class HwStats {
  tlbHits = 0;
  tlbMisses = 0;
  walks = 0;
  guestTableReads = 0;
  nestedTableReads = 0;
  /** Accesses completed by a walk; with tlbHits they make dataAccesses (kept apart to spare the hit path a store). */
  walkDataAccesses = 0;
  /** Guest paging-structure entries whose A or D bit the walker set. */
  adWrites = 0;
  /** EPT/NPT entries whose A or D bit the walker set. */
  nestedAdWrites = 0;
  pscHits = 0;
  pscMisses = 0;
  nestedTlbHits = 0;
  nestedTlbMisses = 0;
  nestedPscHits = 0;
  nestedPscMisses = 0;
  guestPageFaults = 0;
  eptViolations = 0;
  eptMisconfigs = 0;
  npfs = 0;
  cr3Loads = 0;
  invlpg = 0;
  invpcid = 0;
  invvpid = 0;
  invept = 0;
  /** Invalidations that dropped every non-global (or every) entry of a context. */
  contextFlushes = 0;

  /** The accesses themselves: every TLB hit and every walk that completed. */
  get dataAccesses(): number {
    return this.tlbHits + this.walkDataAccesses;
  }

  reset(): void {
    for (const k of Object.keys(this) as (keyof HwStats)[]) (this as unknown as Record<string, number>)[k] = 0;
  }

  toJSON(): Record<string, number> {
    const { walkDataAccesses: _, ...rest } = this;
    return { ...rest, dataAccesses: this.dataAccesses } as unknown as Record<string, number>;
  }
}

/** Hardware counters: plain names, as the kernel has none for these. */
export const HW_COUNTERS: readonly CounterDesc[] = [
  { name: "tlbHits", kind: "cumulative", unit: "events", description: "translations served by the TLB" },
  { name: "tlbMisses", kind: "cumulative", unit: "events", description: "translations that needed a page walk" },
  {
    name: "walks",
    kind: "cumulative",
    unit: "events",
    description: "page walks started (1D natively or over shadow tables, 2D under EPT/NPT)",
  },
  {
    name: "guestTableReads",
    kind: "cumulative",
    unit: "references",
    description: "reads of guest paging-structure entries (natively, of any paging-structure entry)",
  },
  {
    name: "nestedTableReads",
    kind: "cumulative",
    unit: "references",
    description: "reads of EPT/NPT entries while translating guest-physical addresses",
  },
  { name: "dataAccesses", kind: "cumulative", unit: "references", description: "the accesses themselves" },
  { name: "adWrites", kind: "cumulative", unit: "events", description: "guest paging-structure entries whose A or D bit the walker set" },
  { name: "nestedAdWrites", kind: "cumulative", unit: "events", description: "EPT/NPT entries whose A or D bit the walker set" },
  {
    name: "pscHits",
    kind: "cumulative",
    unit: "events",
    description: "walks that started below the root thanks to a paging-structure cache",
  },
  { name: "pscMisses", kind: "cumulative", unit: "events", description: "walks that started at the root" },
  { name: "nestedTlbHits", kind: "cumulative", unit: "events", description: "guest-physical translations served by the nested TLB" },
  { name: "nestedTlbMisses", kind: "cumulative", unit: "events", description: "guest-physical translations that walked EPT/NPT" },
  { name: "nestedPscHits", kind: "cumulative", unit: "events", description: "nested walks that started below the EPT/NPT root" },
  { name: "nestedPscMisses", kind: "cumulative", unit: "events", description: "nested walks that started at the EPT/NPT root" },
  { name: "guestPageFaults", kind: "cumulative", unit: "events", description: "translations that stopped with a guest #PF" },
  { name: "eptViolations", kind: "cumulative", unit: "events", description: "translations that stopped with an EPT violation" },
  { name: "eptMisconfigs", kind: "cumulative", unit: "events", description: "translations that stopped with an EPT misconfiguration" },
  { name: "npfs", kind: "cumulative", unit: "events", description: "translations that stopped with an AMD #NPF" },
  { name: "cr3Loads", kind: "cumulative", unit: "events", description: "MOV to CR3 executed" },
  { name: "invlpg", kind: "cumulative", unit: "events", description: "INVLPG executed" },
  { name: "invpcid", kind: "cumulative", unit: "events", description: "INVPCID executed" },
  { name: "invvpid", kind: "cumulative", unit: "events", description: "INVVPID executed" },
  { name: "invept", kind: "cumulative", unit: "events", description: "INVEPT executed" },
  {
    name: "contextFlushes",
    kind: "cumulative",
    unit: "events",
    description: "invalidations that dropped every non-global (or every) entry of a context",
  },
];
