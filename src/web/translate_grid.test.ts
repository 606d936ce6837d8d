// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, runTranslate } from "../sim/translate.js";
import { emptyReason, gridFor } from "./translate_grid.js";

describe("translate grid", () => {
  test("a cold 4+4 EPT walk fills the 5 x 5 grid, one reference per cell, guest reads in the last column", () => {
    const r = runTranslate(DEFAULT_TRANSLATE);
    const g = gridFor(r);
    expect([g.rows, g.cols]).toEqual([5, 5]);
    expect(g.cells.length).toBe(25);
    expect(new Set(g.cells.map((c) => `${c.row},${c.col}`)).size).toBe(25);
    for (const c of g.cells) {
      if (c.step.kind === "nested-table") expect(c.col).toBeLessThan(4);
      else expect(c.col).toBe(4);
    }
    expect(g.cells[24]!.step.kind).toBe("data");
    expect([g.cells[24]!.row, g.cells[24]!.col]).toEqual([4, 4]);
    // Row by row: four EPT reads translate the table's gpa, then the guest entry is read.
    expect(g.cells.slice(0, 5).map((c) => [c.row, c.col])).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 3],
      [0, 4],
    ]);
  });

  test("5-level tables make a 6 x 6 grid of 36 references", () => {
    const g = gridFor(runTranslate({ ...DEFAULT_TRANSLATE, levels: 5 }));
    expect([g.rows, g.cols, g.cells.length]).toEqual([6, 6, 36]);
  });

  test("large pages leave cells empty and say why; a native walk is one column", () => {
    const host2m = runTranslate({ ...DEFAULT_TRANSLATE, hostPage: "2m" });
    const g = gridFor(host2m);
    expect(g.cells.length).toBe(20);
    expect(g.cells.some((c) => c.col === 3)).toBe(false);
    expect(emptyReason(host2m, 0, 3)).toContain("2M EPT page");
    const guest2m = runTranslate({ ...DEFAULT_TRANSLATE, guestPage: "2m" });
    expect(gridFor(guest2m).cells.some((c) => c.row === 3)).toBe(false);
    expect(emptyReason(guest2m, 3, 4)).toContain("guest walk");
    const native = gridFor(runTranslate({ ...DEFAULT_TRANSLATE, paging: "native" }));
    expect([native.rows, native.cols, native.cells.length]).toEqual([5, 1, 5]);
  });
});
