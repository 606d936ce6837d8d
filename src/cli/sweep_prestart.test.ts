// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { endSweepWorkers, prestartSweepWorkers, sweepThreadsWanted, takeSweepWorkers } from "./sweep_prestart.js";

describe("sweepThreadsWanted: the worker threads the executable starts before loading the CLI", () => {
  test("a sweep wants one thread fewer than its lanes (this thread is one), at most one fewer than the cores", () => {
    expect(sweepThreadsWanted(["sweep", "s.yaml"], 4)).toBe(3);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "2"], 4)).toBe(1);
    expect(sweepThreadsWanted(["--no-color", "sweep", "s.yaml", "--workers=3"], 8)).toBe(2);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "1024"], 4)).toBe(3);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "1"], 8)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "0"], 8)).toBe(0);
    // The value read as the command reads it (Number()), the last one winning.
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", " 3"], 8)).toBe(2);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "0x4"], 8)).toBe(3);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "6", "--workers", "2"], 8)).toBe(1);
  });

  test("other commands, help and a --workers the command refuses want none", () => {
    expect(sweepThreadsWanted(["run", "s.yaml"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "--help"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "-h"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "two"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "2.5"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "2000"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers"], 4)).toBe(0);
  });
});

describe("threads started early", () => {
  const script = (js: string) => new URL(`data:text/javascript,${encodeURIComponent(js)}`);
  const settle = () => new Promise((r) => setTimeout(r, 1000));

  test("one that fails to load is no unhandled error, and is not handed out", async () => {
    prestartSweepWorkers(["sweep", "s.yaml", "--workers", "2"], script("throw new Error('no bundle')"), 4);
    await settle();
    expect(takeSweepWorkers(1)).toEqual([]);
    await endSweepWorkers();
  });

  test("live ones are handed out up to the number asked for; the rest end", async () => {
    prestartSweepWorkers(["sweep", "s.yaml", "--workers", "3"], script("setInterval(() => {}, 1000)"), 4);
    await settle();
    const first = takeSweepWorkers(1);
    const rest = takeSweepWorkers(5);
    expect([first.length, rest.length]).toEqual([1, 1]);
    expect(await endSweepWorkers()).toEqual([]);
    for (const w of [...first, ...rest]) await w.terminate();
  });
});
