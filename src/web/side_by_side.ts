// SPDX-License-Identifier: MIT
// Side by side: the same guest access (same gva, levels, guest page) under EPT and under
// shadow paging. Under EPT the hardware makes the two-dimensional walk (runTranslate). Under
// shadow paging it walks KVM's shadow tables, one dimension, gva -> hpa: on a hit one entry
// per level and the data; on a miss the walk stops at a missing spte, the #PF exits, KVM reads
// the guest's own entries in software (FNAME(walk_addr_generic)), installs the spte
// (FNAME(fetch) -> mmu_set_spte()) and the guest retries: the hit's references again.

import type { TranslateReport } from "../sim/translate.js";
import type { ShadowLeaf } from "./shadow_walk.js";

export interface SideRef {
  /** 1-based position in its column's sequence. */
  n: number;
  label: string;
  /** Entry or address shown, "" when the scratch machine does not model it. */
  value: string;
  kind: "guest-table" | "nested-table" | "shadow-table" | "data";
}

export interface SideBySide {
  ept: { refs: SideRef[]; guest: number; nested: number; data: number };
  /** The hardware's walk of the shadow tables when the spte is there. */
  hit: SideRef[];
  /** What a miss adds before the retried walk: KVM's software reads of the guest's entries. */
  missReads: SideRef[];
  summary: string;
}

const X86 = ["", "PTE", "PDE", "PDPTE", "PML4E", "PML5E"];

/** The two columns for one access: `ept` is runTranslate under EPT, `shadow` the shadow walk (shadow_walk.ts). */
export function sideBySide(ept: TranslateReport, shadow: TranslateReport, leaf: ShadowLeaf | null): SideBySide {
  const refs = ept.steps.map(
    (s): SideRef => ({
      n: s.step,
      label: s.kind === "data" ? "data" : s.kind === "nested-table" ? `${s.table} (for ${s.translating})` : s.table,
      value: s.kind === "data" ? `hpa ${s.hpa}` : s.entry,
      kind: s.kind,
    }),
  );
  const count = (k: string) => ept.steps.filter((s) => s.kind === k).length;
  // The spte maps a 4 KiB host frame (the scratch machine's backing under shadow paging), so the
  // shadow walk goes down to a PTE even for a guest huge page: KVM then builds a direct shadow
  // page (FNAME(fetch) with a level capped by kvm_mmu_hugepage_adjust()'s host mapping level).
  const levels = shadow.options.levels;
  const hit: SideRef[] = [];
  for (let l: number = levels; l >= 1; l--) {
    // The shadow walk's leaf value is shown only where it is a PTE (a 4 KiB guest page).
    const isLeaf = l === 1 && leaf !== null && shadow.options.guestPage === "4k";
    hit.push({ n: levels - l + 1, label: `shadow ${X86[l]}`, value: isLeaf ? leaf!.entry : "", kind: "shadow-table" });
  }
  const data = shadow.steps.find((s) => s.kind === "data");
  hit.push({ n: levels + 1, label: "data", value: data ? `hpa ${data.hpa}` : "", kind: "data" });
  const missReads = shadow.steps
    .filter((s) => s.kind === "guest-table")
    .map((s, i): SideRef => ({ n: i + 1, label: `${s.table} at gpa ${s.gpa}, hpa ${s.hpa}`, value: s.entry, kind: "guest-table" }));
  const e = { refs, guest: count("guest-table"), nested: count("nested-table"), data: count("data") };
  return { ept: e, hit, missReads, summary: summaryOf(e.refs.length, e.nested, hit.length, missReads.length) };
}

function summaryOf(eptTotal: number, nested: number, hit: number, miss: number): string {
  return (
    `EPT makes ${eptTotal} references because each of the guest's table addresses and the data's address is a guest-physical address ` +
    `the hardware translates through the EPT (${nested} EPT reads); shadow paging makes ${hit} because KVM already folded gva -> gpa -> hpa ` +
    `into its shadow tables, and pays instead on a miss (a #PF exit and ${miss} guest entries read in software) and on every guest page-table write.`
  );
}
