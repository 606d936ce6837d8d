// SPDX-License-Identifier: MIT
import { afterEach, describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

const EXAMPLE = new URL("../../examples/fault-in.yaml", import.meta.url).pathname;
afterEach(() => {
  process.env.MEMVIRT_PROGRESS = "off";
});

describe("progress on standard error", () => {
  test("not a terminal: a plain line per phase on stderr; stdout is the same report as without", async () => {
    const quiet = await runCli(["run", EXAMPLE]);
    process.env.MEMVIRT_PROGRESS = "lines";
    const r = await runCli(["run", EXAMPLE]);
    expect(r.stdout).toBe(quiet.stdout);
    expect(r.stderr.trimEnd().split("\n")).toEqual([
      `memvirt run: running ${EXAMPLE}`,
      expect.stringMatching(/^memvirt run: done in \d+\.\d s$/),
    ]);
    const c = await runCli(["run", EXAMPLE, "--compare", "mmu=ept,shadow", "--csv", "-"]);
    expect(c.stdout.startsWith("label,")).toBe(true);
    expect(c.stderr.trimEnd().split("\n")).toEqual([
      "memvirt compare: mmu=ept (1 of 2)",
      "memvirt compare: mmu=shadow (2 of 2)",
      expect.stringMatching(/^memvirt compare: done in \d+\.\d s$/),
    ]);
  }, 60_000);

  test("MEMVIRT_PROGRESS=off: nothing on stderr", async () => {
    process.env.MEMVIRT_PROGRESS = "off";
    expect((await runCli(["run", EXAMPLE])).stderr).toBe("");
  });
});
