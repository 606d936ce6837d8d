// SPDX-License-Identifier: MIT
// The translate view's shadow-paging walk. The hardware walks KVM's shadow tables (gva ->
// hpa, one dimension); KVM built their leaf from the guest's own entries, which it read in
// software (FNAME(walk_addr_generic) in paging_tmpl.h) at their gpa, in host frames behind
// the memslot. The scratch machine builds no shadow tables, so this shows the guest's
// entries with their gpa and real hpa (read off the same guest under EPT, whose guest tables
// and data sit at the same gpas), the data at its real hpa, and the leaf spte made from them.

import { formatX86Pte } from "../hw/x86_pte.js";
import { runTranslate, type TranslateOptions, type TranslateReport } from "../sim/translate.js";

export interface ShadowLeaf {
  lo: number;
  hi: number;
  /** The spte decoded. */
  entry: string;
  /** The host-physical frame it maps. */
  hpa: string;
}

/** The guest's walk as KVM reads it under shadow paging, with real hpas, and the leaf spte. */
export function shadowWalk(opts: TranslateOptions): { walk: TranslateReport; leaf: ShadowLeaf | null } {
  const host = runTranslate({ ...opts, paging: "ept", hostPage: "4k", accesses: 1, caches: false });
  const steps = host.steps.filter((s) => s.kind !== "nested-table").map((s, i) => ({ ...s, step: i + 1 }));
  const g = steps.filter((s) => s.kind === "guest-table").length;
  const d = steps.length - g;
  const walk: TranslateReport = {
    ...host,
    options: { ...opts, paging: "native" },
    steps,
    references: { total: steps.length, guestTable: g, nestedTable: 0, data: d },
    perAccess: [{ total: steps.length, guestTable: g, nestedTable: 0, data: d }],
  };
  const gleaf = [...steps].reverse().find((s) => s.kind === "guest-table");
  if (host.outcome !== "ok" || !gleaf || host.hpa === null) return { walk, leaf: null };
  // simplified: the spte is the guest leaf's low flag bits and NX on the host frame; make_spte() also sets
  // KVM's software bits and may clear W to write-protect a guest page table (mmu_try_to_unsync_pages()).
  const size = host.pageSize;
  const frame = Math.floor(Number(BigInt(host.hpa)) / size) * size;
  const lo = ((frame % 2 ** 32) + (gleaf.lo & 0xfff)) >>> 0;
  const hi = (Math.floor(frame / 2 ** 32) | (gleaf.hi & 0x8000_0000)) >>> 0;
  return { walk, leaf: { lo, hi, entry: formatX86Pte(lo, hi, gleaf.level), hpa: `0x${frame.toString(16)}` } };
}
