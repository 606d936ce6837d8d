// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { loadScenario } from "./scenario_load.js";
import { duration, estimateWork, workIssues } from "./work_estimate.js";

const yaml = (steps: string, extra = "") =>
  `host: {ram: 4GiB}\nvms:\n  - name: vm0\n    ram: 1GiB\n    processes:\n      - name: p\n        steps:\n${steps}${extra}`;

describe("work estimate", () => {
  test("accesses, footprint and memory of a small run, by the measured constants", () => {
    const s = loadScenario(
      yaml(
        "          - mmap: {name: h, size: 8MiB}\n          - touch: {name: h, op: write}\n          - random: {name: h, accesses: 1000, writeRatio: 0}\n          - mmapChurn: {iterations: 10, size: 64KiB, touch: 0}\n",
      ),
      "w.yaml",
    );
    const e = estimateWork(s);
    // touch: 2048 pages; random: 1000; churn: 10 rounds that write nothing count one each.
    expect(e.accesses).toBe(2048 + 1000 + 10);
    expect(e.touchedPages).toBe(2048 + 16);
    expect(e.memory).toBe(100 * 2 ** 20 + 2 ** 20 + 262144 * 5 + (2048 + 16) * 112);
    expect(e.biggest).toEqual({ path: ["vms", 0, "processes", 0, "steps", 1, "touch"], accesses: 2048 });
    expect(workIssues(s, e)).toEqual([]);
  });

  test("bounds: --force lifts them, limits: moves them, runs multiply the accesses", () => {
    const s = loadScenario(yaml("          - random: {size: 1MiB, accesses: 600_000_000, writeRatio: 0}\n"), "w.yaml");
    const e = estimateWork(s);
    expect(workIssues(s, e)).toEqual([]);
    expect(workIssues(s, e, { runs: 2 })).toEqual([
      {
        path: ["vms", 0, "processes", 0, "steps", 0, "random"],
        message:
          "the run plans 1,200,000,000 guest accesses (2 runs of 600,000,000), about 67 minutes at ~300,000 accesses/s; at most 1,000,000,000 without --force: fewer accesses or iterations, or pass --force, or set limits: {accesses: 1_200_000_000}",
      },
    ]);
    expect(workIssues(s, e, { runs: 2, force: true })).toEqual([]);
    const raised = loadScenario(
      yaml("          - random: {size: 1MiB, accesses: 600_000_000, writeRatio: 0}\n", "limits: {accesses: 1_200_000_000}\n"),
      "w.yaml",
    );
    expect(workIssues(raised, estimateWork(raised), { runs: 2 })).toEqual([]);
  });

  test("prealloc counts all guest RAM as touched", () => {
    const s = loadScenario("host: {ram: 1TiB}\nvms: [{name: v, ram: 512GiB, prealloc: true}]\n", "w.yaml");
    const e = estimateWork(s);
    expect(e.touchedPages).toBe(2 ** 27);
    expect(workIssues(s, e)[0]!.message).toBe(
      "the model would need about 14.7 GiB of memory (1 VM, 512 GiB of guest RAM, 512 GiB of it touched); at most 4.0 GiB without --force: smaller guests or regions, or pass --force, or set limits: {memory: 15GiB}",
    );
  });

  test("durations read as people say them", () => {
    expect(duration(30)).toBe("about 30 seconds");
    expect(duration(4000)).toBe("about 67 minutes");
    expect(duration(3e10)).toBe("about 951 years");
  });
});
