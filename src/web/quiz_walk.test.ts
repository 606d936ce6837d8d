// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, runTranslate } from "../sim/translate.js";
import { checkWalk, tableChoices, tableLabel, walkAnswer } from "./quiz_walk.js";

describe("walk quiz", () => {
  const ept = runTranslate(DEFAULT_TRANSLATE);

  test("the answers of a cold 4+4 EPT walk are the model's 25 references: EPT L4..L1 then the guest entry, row by row, then the data", () => {
    const answers = ept.steps.map((_, i) => walkAnswer(ept, i));
    expect(answers.length).toBe(25);
    expect(answers.slice(0, 6).map((a) => [a.table, a.row, a.col])).toEqual([
      ["n4", 0, 0],
      ["n3", 0, 1],
      ["n2", 0, 2],
      ["n1", 0, 3],
      ["g4", 0, 4],
      ["n4", 1, 0],
    ]);
    expect(answers.map((a) => a.table).join(" ")).toBe("n4 n3 n2 n1 g4 n4 n3 n2 n1 g3 n4 n3 n2 n1 g2 n4 n3 n2 n1 g1 n4 n3 n2 n1 d");
    expect([answers[24]!.row, answers[24]!.col, answers[24]!.step.hpa]).toEqual([4, 4, ept.hpa]);
    expect(() => walkAnswer(ept, 25)).toThrow("25 references, not 26");
  });

  test("choices and labels follow the paging: EPT or NPT levels, none under native", () => {
    expect(tableChoices(ept)).toEqual(["g4", "g3", "g2", "g1", "n4", "n3", "n2", "n1", "d"]);
    const npt = runTranslate({ ...DEFAULT_TRANSLATE, paging: "npt" });
    expect(tableLabel(npt, "n3")).toBe("NPT L3");
    expect(tableLabel(ept, "n3")).toBe("EPT L3");
    const native = runTranslate({ ...DEFAULT_TRANSLATE, paging: "native" });
    expect(tableChoices(native)).toEqual(["g4", "g3", "g2", "g1", "d"]);
    expect(native.steps.map((_, i) => walkAnswer(native, i).table)).toEqual(["g4", "g3", "g2", "g1", "d"]);
  });

  test("a right guess scores; wrong ones are explained by what the walk must do first", () => {
    expect(checkWalk(ept, 0, { table: "n4", row: 0, col: 0 })).toMatchObject({ right: true, why: "" });
    // Guessing the guest's PML4 entry first: its gpa must be translated through the EPT first.
    const first = checkWalk(ept, 0, { table: "g4", row: 0, col: 4 });
    expect(first.right).toBe(false);
    expect(first.why).toContain("starting at EPT L4 (the root, from the EPTP)");
    // After EPT L1 of row 0, the guest entry is read.
    expect(checkWalk(ept, 4, { table: "n4", row: 1, col: 0 }).why).toContain(
      "now the hardware reads the guest's own entry there (guest L4)",
    );
    // Mid nested walk.
    expect(checkWalk(ept, 2, { table: "n1", row: 0, col: 3 }).why).toContain("EPT L2 comes next");
    // The data's gpa goes through the EPT before the data access.
    expect(checkWalk(ept, 20, { table: "d", row: 4, col: 4 }).why).toContain("must go through the EPT tables");
    const cell = checkWalk(ept, 24, { table: "d", row: 3, col: 4 });
    expect([cell.tableRight, cell.cellRight]).toEqual([true, false]);
    expect(cell.why).toContain("row 5, column 5");
    const npt = runTranslate({ ...DEFAULT_TRANSLATE, paging: "npt" });
    expect(checkWalk(npt, 0, { table: "g4", row: 0, col: 4 }).why).toContain("NPT L4 (the root, from nCR3)");
  });

  test("a 2 MiB EPT page ends each nested walk at L2: 4 x 3 + 4 + 3 + 1 = 20 answers", () => {
    const r = runTranslate({ ...DEFAULT_TRANSLATE, hostPage: "2m" });
    expect(r.steps.map((_, i) => walkAnswer(r, i).table).join(" ")).toBe("n4 n3 n2 g4 n4 n3 n2 g3 n4 n3 n2 g2 n4 n3 n2 g1 n4 n3 n2 d");
  });

  test("with the paging-structure caches on, the answers are the shorter walk the caches leave, and the explanation says why a nested walk starts low", () => {
    const r = runTranslate({ ...DEFAULT_TRANSLATE, caches: true });
    expect(r.steps.map((_, i) => walkAnswer(r, i).table).join(" ")).toBe("n4 n3 n2 n1 g4 n1 g3 n1 g2 n1 g1 n3 n2 n1 d");
    expect(checkWalk(r, 5, { table: "g3", row: 1, col: 4 }).why).toContain(
      "starting at EPT L1 (a paging-structure cache or the nested TLB gave the levels above)",
    );
  });
});
