// SPDX-License-Identifier: MIT
// Counters are declared once, in a table per group: the kernel's name as the key, a kind, a
// unit and a sentence (gem5's stats groups). The storage (one plain object of numbers per
// group), the printers' lists and the README's tables are all derived from that table; the
// model never formats output.

export type CounterKind = "cumulative" | "instant" | "peak";
export type CounterUnit = "events" | "pages" | "bytes" | "KiB" | "cycles" | "references" | "entries";

export interface CounterDecl {
  readonly kind: CounterKind;
  readonly unit: CounterUnit;
  readonly description: string;
  /**
   * false: memvirt's own counter, in a group that otherwise carries the kernel's names (a
   * printer marks it). Hardware counters have no kernel names at all and carry no flag.
   */
  readonly kernel?: false;
}

/** A group's declarations, keyed by counter name, in the order reports list them. */
export type CounterDecls = { readonly [name: string]: CounterDecl };

/** One declaration with its name, as printers iterate them. */
export interface CounterDesc extends CounterDecl {
  /** The Linux name (`pgfault`, `pf_fixed`) or, for hardware events, a plain one (`tlbHits`). */
  readonly name: string;
}

/** The storage a group's declarations describe: one number per counter. */
export type Counters<D extends CounterDecls> = { -readonly [K in keyof D]: number };

/** The declarations as a list, in declaration order. */
export function counterList(decls: CounterDecls): readonly CounterDesc[] {
  return Object.entries(decls).map(([name, d]) => ({ name, ...d }));
}

/** A zeroed counter object for `decls`, in declaration order. */
export function zeroCounters<D extends CounterDecls>(decls: D): Counters<D> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(decls)) out[name] = 0;
  return out as Counters<D>;
}

/**
 * A maker of fresh copies of `zero`, the storage a group's counters live in, so `stats.pf_fixed++`
 * stays a field increment. JSON.parse builds every copy from the same keys in the same order:
 * fast in-object properties and one hidden class for all (measured with V8's natives: a class
 * constructor that adds the fields in a loop leaves them in dictionary mode, 12x slower to
 * increment; a spread copy changes hidden class once its call site's inline cache warms up).
 */
export function counterStorage<T extends object>(zero: T): () => T {
  const json = JSON.stringify(zero);
  return () => JSON.parse(json) as T;
}

/** The description as printers show it: memvirt's own counters marked, so no one looks for them in Linux. */
export function counterMeaning(d: CounterDecl): string {
  return d.kernel === false ? `(memvirt) ${d.description}` : d.description;
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
