// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { loadScenario, runScenario, ScenarioError } from "./index.js";

const TINY = `
host: { ram: 256MiB, swap: 0, thp: never }
vms:
  - { name: vm0, ram: 128MiB, mmu: ept, processes: [{ name: p0, steps: [{ mmap: { name: buf, size: 4MiB } }, { touch: { name: buf, op: write } }] }] }
`;

describe("library API", () => {
  test("runScenario takes text, reports the run and streams its events", async () => {
    let exits = 0;
    const r = await runScenario(TINY, { onEvent: (e) => void (e.kind === "kvm.exit" && exits++) });
    // One EPT violation per page written (1,024) and per guest page-table page (8).
    expect([r.accesses, r.vms[0]!.stats.exits, exits]).toEqual([1024, 1032, 1032]);
  });

  test("an aborted run rejects with the signal's reason", async () => {
    const ac = new AbortController();
    const big = TINY.replace("4MiB", "64MiB");
    const p = runScenario(big, {
      onProgress: (done) => {
        if (done > 0) ac.abort(new Error("stop"));
      },
      signal: ac.signal,
    });
    await expect(p).rejects.toThrow("stop");
  });

  test("a bad scenario is a ScenarioError naming the path and line", () => {
    expect(() => loadScenario("seed: x\n", "bad.yaml")).toThrow(ScenarioError);
    expect(() => loadScenario("seed: x\n", "bad.yaml")).toThrow(/^bad\.yaml:1:7: seed: "x" is not a count/m);
  });
});
