// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

describe("memvirt selftest", () => {
  test("demand_paging -v 2 -b 4M prints the real test's nine lines, exit 0", async () => {
    const r = await runCli(["selftest", "demand_paging", "-v", "2", "-b", "4M"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(9);
    expect(lines[8]).toMatch(/^Overall demand paging rate:\t\d+\.\d{6} pgs\/sec$/);
  });

  test("a refused option: the test's own message on stderr, exit 2, nothing on stdout", async () => {
    const r = await runCli(["selftest", "demand_paging", "-v", "0"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Number of vCPUs must be greater than 0, got '0'");
    expect(r.stderr).toContain("demand_paging_test's own TEST_ASSERT");
    expect(r.stderr).not.toContain("    at ");
  });

  test("-h prints the real test's usage; an unknown test and a bad --ghz are refused", async () => {
    const h = await runCli(["selftest", "demand_paging", "-h"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("usage: demand_paging_test [-h] [-m vm_mode] [-u uffd_mode] [-a]");
    const u = await runCli(["selftest", "dirty_logging", "-v", "1"]);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('no test named "dirty_logging"');
    const g = await runCli(["selftest", "demand_paging", "--ghz", "0"]);
    expect(g.code).toBe(2);
  });
});

describe("memvirt selftest dirty_log_perf", () => {
  test("-v 2 -b 4M prints the real test's 16 lines; -i 1 is refused with its message, exit 2, no stdout", async () => {
    const r = await runCli(["selftest", "dirty_log_perf", "-v", "2", "-b", "4M"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(16);
    expect(lines[15]).toMatch(/^Clear dirty log over 2 iterations took \d+\.\d{9}s\. \(Avg \d+\.\d{9}s\/iteration\)$/);
    const bad = await runCli(["selftest", "dirty_log_perf", "-i", "1"]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toContain("The test should have at least two iterations");
    const e = await runCli(["selftest", "dirty_log_perf", "-e"]);
    expect(e.code).toBe(2);
    expect(e.stderr).toContain("refused by memvirt");
  });
});
