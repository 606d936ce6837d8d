// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { sweepThreadsWanted } from "./sweep_prestart.js";

describe("sweepThreadsWanted: the worker threads the executable starts before loading the CLI", () => {
  test("a sweep wants one thread fewer than its lanes (this thread is one)", () => {
    expect(sweepThreadsWanted(["sweep", "s.yaml"], 4)).toBe(3);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "2"], 4)).toBe(1);
    expect(sweepThreadsWanted(["--no-color", "sweep", "s.yaml", "--workers=3"], 8)).toBe(2);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "1"], 8)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "0"], 8)).toBe(0);
  });

  test("other commands, help and a --workers the command refuses want none", () => {
    expect(sweepThreadsWanted(["run", "s.yaml"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "--help"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "-h"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "two"], 4)).toBe(0);
    expect(sweepThreadsWanted(["sweep", "s.yaml", "--workers", "2000"], 4)).toBe(0);
  });
});
