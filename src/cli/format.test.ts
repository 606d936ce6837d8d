// SPDX-License-Identifier: MIT
// Tables fit $COLUMNS; NO_COLOR and --no-color leave no escape byte, borders included.
import { stripVTControlCharacters } from "node:util";
import { afterEach, describe, expect, test } from "vitest";
import { type Out, fitWidths, table, wrapCell } from "./format.js";
import { main } from "./main.js";

const EXAMPLE = new URL("../../examples/reclaim-swap.yaml", import.meta.url).pathname;
const saved = { COLUMNS: process.env.COLUMNS, NO_COLOR: process.env.NO_COLOR };
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** main() on a pretend terminal `columns` wide. */
async function onTerminal(args: string[], columns = 200): Promise<{ code: number; stdout: string }> {
  let stdout = "";
  const out: Out = { isTTY: true, columns, write: (s) => (stdout += s), error: () => {} };
  const code = await main(args, out);
  return { code, stdout };
}

const widest = (text: string) =>
  Math.max(
    ...stripVTControlCharacters(text)
      .split("\n")
      .map((l) => [...l].length),
  );

describe("table width", () => {
  test("a description column wraps at word boundaries; a word longer than its column is cut, not dropped", () => {
    expect(wrapCell("page faults handled by handle_mm_fault(), minor and major", 16)).toBe(
      "page faults\nhandled by\nhandle_mm_fault(\n), minor and\nmajor",
    );
  });

  test("a coloured cell that must wrap is wrapped on its visible text, never through an escape sequence", () => {
    expect(wrapCell("\u001b[1mnested table\u001b[22m", 7)).toBe("nested\ntable");
    expect(wrapCell("\u001b[1mshort\u001b[22m", 7)).toBe("\u001b[1mshort\u001b[22m");
  });

  test("widths: numbers keep theirs; the text columns give up the excess, widest first", () => {
    const head = ["counter", "value", "description"];
    const rows = [["pgfault", "292,882", "x".repeat(100)]];
    // Natural: 9 + 9 + 102 and 4 borders = 124; at 60 the description gets 60 - 4 - 18 = 38.
    expect(fitWidths(head, rows, ["left", "right", "left"], 60)).toEqual([9, 9, 38]);
    expect(fitWidths(head, rows, ["left", "right", "left"], 200)).toEqual([9, 9, 102]);
  });

  for (const columns of [60, 80, 120]) {
    test(`COLUMNS=${columns}: no line of run, translate or compare is wider`, async () => {
      process.env.COLUMNS = String(columns);
      for (const args of [["run", EXAMPLE], ["translate"], ["run", EXAMPLE, "--compare", "mmu=ept,shadow"]]) {
        const r = await onTerminal(args);
        expect(r.code, args.join(" ")).toBe(0);
        expect(widest(r.stdout), args.join(" ")).toBeLessThanOrEqual(columns);
      }
    }, 120_000);
  }

  test("the terminal's own width when COLUMNS is not set; none for a pipe", async () => {
    delete process.env.COLUMNS;
    process.env.NO_COLOR = "1";
    expect(widest((await onTerminal(["run", EXAMPLE], 70)).stdout)).toBeLessThanOrEqual(70);
    const rows = [["a", "b".repeat(300)]];
    expect(widest(table({ isTTY: false, write() {}, error() {} }, ["k", "v"], rows))).toBe(1 + 3 + 1 + 302 + 1);
  }, 60_000);
});

describe("colour", () => {
  test("on a terminal: bold and grey borders", async () => {
    delete process.env.NO_COLOR;
    expect((await onTerminal(["translate"])).stdout.includes("\u001b")).toBe(true);
  });

  test("NO_COLOR=1 on a terminal: no escape byte at all, borders included", async () => {
    process.env.NO_COLOR = "1";
    const r = await onTerminal(["run", EXAMPLE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("┌");
    expect(r.stdout.includes("\u001b")).toBe(false);
  }, 60_000);

  test("--no-color, before or after the command: no escape byte", async () => {
    delete process.env.NO_COLOR;
    for (const args of [
      ["--no-color", "translate"],
      ["translate", "--no-color"],
      ["run", EXAMPLE, "--no-color"],
    ]) {
      const r = await onTerminal(args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout.includes("\u001b"), args.join(" ")).toBe(false);
    }
  }, 60_000);
});
