// SPDX-License-Identifier: MIT
// `npm run bench -- --json` prints one JSON document and nothing else, and the model and the C
// reference make the same references. Speeds are never checked here (the machine is shared).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, test } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const built = existsSync(new URL("../dist/index.js", import.meta.url));
const hasTaskset = process.platform === "linux" && spawnSync("taskset", ["-p", String(process.pid)]).status === 0;

describe("bench/run.ts", () => {
  test.skipIf(!built)("--json prints exactly one JSON document; the TLB-hit case agrees with C", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "bench/run.ts", "--json", "--case", "tlbhit", "--samples", "1"], {
      cwd: root,
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      results: { name: string; figures: Record<string, unknown>; agree: { ok: boolean }[] }[];
      disagreements: string[];
      cReference: string;
    };
    expect(doc.results.map((c) => c.name)).toEqual(["tlbhit"]);
    expect(doc.results[0]!.figures.refsPerAccess).toBe(1);
    expect(doc.disagreements).toEqual([]);
    // With a C compiler the three agreement checks ran; without one the document says why.
    if (doc.cReference.startsWith("cc ")) expect(doc.results[0]!.agree.map((a) => a.ok)).toEqual([true, true, true]);
    else expect(doc.cReference).toMatch(/skipped/);
    // With taskset (Linux) the model and C ran pinned to one CPU, named; without it a note says they were not.
    const figures = doc.results[0]!.figures;
    const notes = (doc.results[0] as unknown as { notes: string[] }).notes;
    if (hasTaskset) expect(figures.cpu).toBeTypeOf("number");
    else expect(notes.join(" ")).toMatch(/not pinned/);
  });
});
