// SPDX-License-Identifier: MIT
// Issue 11 item 5: the sweep loader, fed random sweep files, returns a plan or throws a
// UsageError naming the sweep file; never another exception or a hang.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { UsageError } from "./errors.js";
import { MAX_SWEEP_RUNS, planSweep } from "./sweep_cmd.js";

const dir = mkdtempSync(join(tmpdir(), "memvirt-sweepfuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, "s.yaml"),
  "host: {ram: 256MiB}\nvms:\n  - {name: vm0, ram: 64MiB, processes: [{name: p, steps: [{touch: {size: 1MiB, op: write}}]}]}\n",
);
const file = join(dir, "sweep.yaml");

function plan(text: string): "ok" | string {
  try {
    const p = planSweep(file, text);
    expect(p.tasks.length).toBeGreaterThan(0);
    expect(p.tasks.length).toBeLessThanOrEqual(MAX_SWEEP_RUNS);
    return "ok";
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    expect(e.message).toContain(file);
    return e.message;
  }
}

const value = fc.oneof(
  fc.constantFrom("ept", "npt", "shadow", "warp", "4k", "thp", "1GiB", "64TiB", "128MiB", true, false, 0, 1, -1, 2 ** 53, 1.5, null, ""),
  fc.string({ maxLength: 8 }),
  fc.integer(),
);
const key = fc.oneof(
  fc.constantFrom(
    "mmu",
    "backing",
    "ram",
    "vcpus",
    "prealloc",
    "host.ram",
    "host.swap",
    "vms[0].ram",
    "vms[1].ram",
    "cost.tlb_hit",
    "seed",
    "nope",
    "",
  ),
  fc.string({ maxLength: 10 }),
);

describe("sweep loader under fuzzing (issue 11)", () => {
  test("random text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        plan(text);
      }),
      { numRuns: 500 },
    );
  });

  test("random documents", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), (doc) => {
        plan(stringify(doc) ?? "");
      }),
      { numRuns: 300 },
    );
  });

  test("random grids over the scenario (keys, values, seeds)", () => {
    const grid = fc.dictionary(key, fc.oneof(fc.array(value, { maxLength: 4 }), value), { maxKeys: 3 });
    const seeds = fc.option(fc.oneof(fc.array(fc.oneof(fc.nat(), fc.integer(), fc.double()), { maxLength: 3 }), value), { nil: undefined });
    fc.assert(
      fc.property(grid, seeds, fc.constantFrom("s.yaml", "missing.yaml", "", "."), (g, sd, scenario) => {
        plan(stringify({ scenario, grid: g, ...(sd === undefined ? {} : { seeds: sd }) }));
      }),
      { numRuns: 300 },
    );
  });

  test("a grid of more runs than one file may hold is refused before any is built", () => {
    const g = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`cost.e${i}`, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]));
    const t0 = Date.now();
    expect(plan(stringify({ scenario: "s.yaml", grid: g }))).toMatch(/grid: 1\.00e\+40 runs .* at most 10,000 in one sweep file/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
