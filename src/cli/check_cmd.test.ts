// SPDX-License-Identifier: MIT
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

const SCENARIO = `seed: 5
host: {ram: 48MiB, swap: 128MiB, thp: never}
vms:
  - name: vm0
    ram: 128MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 64MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 5000, writeRatio: 0.5}
`;

function file(): string {
  const f = join(mkdtempSync(join(tmpdir(), "chk-")), "s.yaml");
  writeFileSync(f, SCENARIO);
  return f;
}

describe("memvirt check", () => {
  test("no interleaving loses data or leaves a stale mapping; the racing faults retry", async () => {
    const r = await runCli(["check", file(), "--schedules", "4", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results).toHaveLength(4);
    for (const s of j.results) expect([s.dataErrors, s.invariantViolations]).toEqual([0, 0]);
    // The page-out schedules race every fault they touch: many retries.
    expect(j.results[1].retries).toBeGreaterThan(100);
  });

  test("with the sequence re-check skipped, the checker catches the stale mapping and the command fails", async () => {
    const r = await runCli(["check", file(), "--schedules", "2", "--debug-skip-seq-check"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/stale mapping: gfn 0x[0-9a-f]+ installed with pfn/);
  });

  test("correct code passes at pressure 1: the adversary lets a fault through after a few races", async () => {
    const r = await runCli(["check", file(), "--schedules", "2", "--pressure", "1", "--json"]);
    expect(r.code).toBe(0);
    for (const s of JSON.parse(r.stdout).results) expect([s.dataErrors, s.invariantViolations]).toEqual([0, 0]);
  });

  test("run --check full runs the costly checks and passes on correct code; an unknown level exits 2", async () => {
    expect((await runCli(["run", file(), "--check", "full", "--json"])).code).toBe(0);
    const bad = await runCli(["run", file(), "--check", "most"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--check: 'most' is not a check level; use basic \(the default\) or full/);
  });

  test("a bad --pressure exits 2", async () => {
    const r = await runCli(["check", file(), "--pressure", "2"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a probability/);
  });
});
