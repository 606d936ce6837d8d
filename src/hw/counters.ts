// SPDX-License-Identifier: MIT
// Counters are declared once, with the kernel's name, a unit and a sentence (gem5's stats
// groups). Printers read these descriptions; the model never formats output.

export type CounterKind = "cumulative" | "instant" | "peak";

export interface CounterDesc {
  /** The Linux name (`pgfault`, `pf_fixed`) or, for hardware events, a plain one (`tlbMisses`). */
  name: string;
  kind: CounterKind;
  unit: "events" | "pages" | "bytes" | "KiB" | "cycles" | "references" | "entries";
  description: string;
}

/** The values of `descs` read from a counter object, in declaration order. */
export function readCounters(descs: readonly CounterDesc[], src: object): Record<string, number> {
  const out: Record<string, number> = {};
  const rec = src as Record<string, unknown>;
  for (const d of descs) {
    const v = rec[d.name];
    out[d.name] = typeof v === "number" ? v : 0;
  }
  return out;
}
