// SPDX-License-Identifier: MIT
// The walk quiz: before each reference of a translate walk is revealed, the student names
// the table it reads (guest level k, EPT/NPT level k, or the data) and its grid cell. The
// answer is the model's next reference (runTranslate's steps, placed by gridFor), never a
// list written by hand; a wrong answer gets one sentence on why the walk goes where it goes.

import type { TranslateReport, TranslateStep } from "../sim/translate.js";
import { gridFor } from "./translate_grid.js";

/** A table choice: "g4" (guest level 4), "n2" (EPT/NPT level 2), "d" (the data access). */
export type TableKey = string;

export interface WalkGuess {
  table: TableKey;
  row: number;
  col: number;
}

export interface WalkAnswer {
  table: TableKey;
  row: number;
  col: number;
  step: TranslateStep;
}

export interface WalkVerdict {
  right: boolean;
  tableRight: boolean;
  cellRight: boolean;
  answer: WalkAnswer;
  /** One sentence: why the walk reads this next (empty when the guess was right). */
  why: string;
}

export function tableKey(s: TranslateStep): TableKey {
  return s.kind === "data" ? "d" : `${s.kind === "guest-table" ? "g" : "n"}${s.level}`;
}

/** The nested tables' name under the walk's paging ("EPT", "NPT"; "" for a native or shadow walk). */
function nestedName(r: TranslateReport): string {
  return r.options.paging === "npt" ? "NPT" : r.options.paging === "ept" ? "EPT" : "";
}

/** What a table key reads, in words: "guest L4", "EPT L2", "the data". */
export function tableLabel(r: TranslateReport, key: TableKey): string {
  if (key === "d") return "the data";
  return `${key[0] === "g" ? "guest" : nestedName(r)} L${key.slice(1)}`;
}

/** The choices offered: every guest level, every nested level (nested paging only), the data. */
export function tableChoices(r: TranslateReport): TableKey[] {
  const n = r.options.levels;
  const keys: TableKey[] = [];
  for (let l = n; l >= 1; l--) keys.push(`g${l}`);
  if (r.options.paging !== "native") for (let l = n; l >= 1; l--) keys.push(`n${l}`);
  keys.push("d");
  return keys;
}

/** The model's reference number i (0-based): its table and cell. */
export function walkAnswer(r: TranslateReport, i: number): WalkAnswer {
  const c = gridFor(r).cells[i];
  if (!c) throw new Error(`the walk has ${r.steps.length} references, not ${i + 1}`);
  return { table: tableKey(c.step), row: c.row, col: c.col, step: c.step };
}

const GUEST_NAME = ["", "PT", "PD", "PDPT", "PML4", "PML5"];

/** Checks a guess at reference i against the model and explains a wrong one. */
export function checkWalk(r: TranslateReport, i: number, g: WalkGuess): WalkVerdict {
  const a = walkAnswer(r, i);
  const tableRight = g.table === a.table;
  const cellRight = g.row === a.row && g.col === a.col;
  const right = tableRight && cellRight;
  return { right, tableRight, cellRight, answer: a, why: right ? "" : explain(r, i, a, g, tableRight) };
}

function explain(r: TranslateReport, i: number, a: WalkAnswer, g: WalkGuess, tableRight: boolean): string {
  const grid = gridFor(r);
  const nn = nestedName(r);
  const root = r.options.paging === "npt" ? "nCR3" : "the EPTP";
  const s = a.step;
  const prev = i > 0 ? r.steps[i - 1] : undefined;
  if (tableRight) {
    const colWord = nn ? `the column the ${nn} level (the last column: the guest entry or the data)` : "one column";
    return `Right table, wrong cell: a row is one guest-physical address being translated (here "${grid.rowLabels[a.row]}") and ${colWord}, so this read is row ${a.row + 1}, column ${a.col + 1}.`;
  }
  if (s.kind === "nested-table") {
    const what =
      s.translating === "data gpa"
        ? "the data's guest-physical address (from the guest's leaf entry)"
        : `guest table ${s.translating}'s guest-physical address`;
    if (prev?.kind !== "nested-table") {
      if (g.table === "d")
        return `The guest's leaf entry gave only a guest-physical address: it must go through the ${nn} tables (${nn} L${s.level} first) before the data can be read.`;
      const start =
        s.level === r.options.levels ? `(the root, from ${root})` : "(a paging-structure cache or the nested TLB gave the levels above)";
      return `The guest's table sits at a guest-physical address, so before reading its entry the hardware translates ${what} through the ${nn} tables, starting at ${nn} L${s.level} ${start}.`;
    }
    return `The ${nn} walk for ${what} is not finished: it goes down one level per read, so ${nn} L${s.level} comes next, until a leaf gives the host frame.`;
  }
  if (s.kind === "guest-table") {
    if (prev?.kind === "nested-table")
      return `The ${nn} walk just ended at its leaf, which gave the host frame of the guest's ${GUEST_NAME[s.level]} table: now the hardware reads the guest's own entry there (guest L${s.level}).`;
    const from = s.level === r.options.levels ? "CR3 points at the top table" : `the guest entry above gave the next table`;
    return `The guest walk goes down one level per row: ${from}, so guest L${s.level} (${GUEST_NAME[s.level]}E) is read next.`;
  }
  if (nn)
    return `The ${nn} walk of the data's guest-physical address has reached its leaf, so the host-physical address is known: all that is left is the data access itself.`;
  return `The guest's leaf entry (L${prev?.level ?? 1}) is the last table read: all that is left is the data access itself.`;
}
