// SPDX-License-Identifier: MIT
// Places the references of a walk (runTranslate's steps, in order) on the grid of a
// two-dimensional walk: one row per guest-physical address the walk translates (each guest
// table's address, from CR3 down, then the data's gpa), one column per EPT/NPT level plus
// a last column for the guest entry read (or, in the last row, the data access). A cold
// 4+4 walk fills the (4 + 1) x (4 + 1) = 25 cells. Native (and shadow) walks are one
// column: the table reads, then the data.

import type { TranslateReport, TranslateStep } from "../sim/translate.js";

export interface GridCell {
  row: number;
  col: number;
  step: TranslateStep;
}

export interface GridLayout {
  rows: number;
  cols: number;
  rowLabels: string[];
  colLabels: string[];
  /** Cells in step order (cells[i] is step i + 1). */
  cells: GridCell[];
}

const GUEST_TAGS: Record<string, number> = { gPML5: 5, gPML4: 4, gPDPT: 3, gPD: 2, gPT: 1, "data gpa": 0 };
const X86_TABLES = ["", "PT", "PD", "PDPT", "PML4", "PML5"];

/** Rows and columns for a walk under `paging` with `levels` guest (and host) levels. */
export function gridFor(report: TranslateReport): GridLayout {
  const o = report.options;
  const n = o.levels;
  const nested = o.paging !== "native";
  const m = nested ? o.levels : 0;
  const rowLabels: string[] = [];
  for (let lvl = n; lvl >= 1; lvl--) {
    const from = lvl === n ? "CR3" : `${X86_TABLES[lvl + 1]}E`;
    rowLabels.push(`${from} -> ${X86_TABLES[lvl]} table`);
  }
  rowLabels.push("data page");
  const colLabels: string[] = [];
  const nestedName = o.paging === "ept" ? "EPT" : "NPT";
  for (let l = m; l >= 1; l--) colLabels.push(`${nestedName} L${l} (${X86_TABLES[l]}E)`);
  colLabels.push(nested ? "guest entry / data" : "entry / data");
  const cells = report.steps.map((s): GridCell => {
    if (s.kind === "data") return { row: n, col: m, step: s };
    if (s.kind === "guest-table") return { row: n - s.level, col: m, step: s };
    const forLevel = GUEST_TAGS[s.translating] ?? 0;
    return { row: n - forLevel, col: m - s.level, step: s };
  });
  return { rows: n + 1, cols: m + 1, rowLabels, colLabels, cells };
}

const LEAF_LEVEL: Record<string, number> = { "4k": 1, "2m": 2, "1g": 3 };

/** Why a grid cell stays empty after the whole walk: a large page ends a walk early, or a cache served it. */
export function emptyReason(report: TranslateReport, row: number, col: number): string {
  const o = report.options;
  const n = o.levels;
  const m = o.paging !== "native" ? o.levels : 0;
  const gl = LEAF_LEVEL[o.guestPage]!;
  const hl = LEAF_LEVEL[o.hostPage]!;
  if (row < n && row > n - gl) return `skipped: the ${o.guestPage.toUpperCase()} guest page ends the guest walk at level ${gl}`;
  if (col < m && col > m - hl)
    return `skipped: the ${o.hostPage.toUpperCase()} ${o.paging.toUpperCase()} page ends each nested walk at level ${hl}`;
  if (report.outcome !== "ok") return `not reached: the walk stopped with ${report.outcome}`;
  return o.caches || o.accesses > 1 ? "not read: served by a cache (TLB, paging-structure cache or nested TLB)" : "";
}
