// SPDX-License-Identifier: MIT
// `memvirt run` on a scenario with phases (examples/phases.yaml): the text report's phase
// table, whose rows add up to the whole run, and phases[] in --json and phase rows in --csv.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, describe, expect, test } from "vitest";
import type { Report } from "../sim/report.js";
import { runCli } from "./run_cli.js";

const EXAMPLE = new URL("../../examples/phases.yaml", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "memvirt-phases-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The phase table's rows: label, then the cells (phases, then the whole run). */
function phaseTable(text: string): { head: string[]; rows: Map<string, string[]> } {
  const at = text.indexOf("\nphases: ");
  expect(at).toBeGreaterThan(0);
  const lines = text.slice(at).split("\n").slice(2);
  const cells = (l: string) =>
    l
      .split("│")
      .slice(1, -1)
      .map((c) => c.trim());
  const head = cells(lines[1]!);
  const rows = new Map<string, string[]>();
  for (const l of lines.slice(2)) {
    if (!l.startsWith("│")) break;
    const [label, ...rest] = cells(l);
    rows.set(label!, rest);
  }
  return { head, rows };
}

describe("memvirt run with phases", () => {
  test("the text report has one table, a column per phase; every cumulative row's phases add up to its whole-run figure", async () => {
    const r = await runCli(["run", EXAMPLE]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\nphases: start, populate, access, reclaim\n");
    const { head, rows } = phaseTable(r.stdout);
    expect(head).toEqual(["counter", "start", "populate", "access", "reclaim", "whole run"]);
    const num = (c: string) => Number(c.replaceAll(",", ""));
    let summed = 0;
    for (const [label, cells] of rows) {
      if (label.endsWith("(end)")) {
        expect(cells.at(-2), `${label}: the last phase ends with the run`).toBe(cells.at(-1));
        continue;
      }
      const phases = cells.slice(0, -1).map(num);
      expect(
        phases.reduce((a, b) => a + b, 0),
        label,
      ).toBe(num(cells.at(-1)!));
      summed++;
    }
    expect(summed).toBeGreaterThan(30);
    // What the example is about: exits in populate and reclaim only; reclaim pages out what QEMU had.
    expect(rows.get("vm0.exits")!.slice(0, 4).map(num)).toEqual([4, 4110, 0, 4112]);
    expect(rows.get("host.pswpout")![3]).toBe("4,114");
    expect(rows.get("vm0.qemu.rssBytes (end)")![2]).toBe("16.07 MiB");
  });

  test("--json has phases[] with the per-phase counters; --csv a row per phase and VM after the whole-run row", async () => {
    const json = join(dir, "r.json");
    const csv = join(dir, "r.csv");
    const r = await runCli(["run", EXAMPLE, "--json", json, "--csv", csv]);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(json, "utf8")) as Report;
    const phases = report.phases!;
    expect(phases.map((p) => p.name)).toEqual(["start", "populate", "access", "reclaim"]);
    expect(phases[2]!.endAccesses - phases[2]!.startAccesses).toBe(40_000);
    expect(phases[3]!.host.vmstat.pswpout).toBe(phases[2]!.vms[0]!.qemu.rssBytes / 4096);
    expect(phases[1]!.vms[0]!.vcpus.map((v) => v.exitReasons.EPT_VIOLATION ?? 0).reduce((a, b) => a + b)).toBe(
      phases[1]!.vms[0]!.stats.exits,
    );
    const rows = parse(readFileSync(csv, "utf8"), { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => row["phases.name"])).toEqual(["", "start", "populate", "access", "reclaim"]);
    expect(rows.slice(1).reduce((a, row) => a + Number(row["vms.stats.pf_fixed"]), 0)).toBe(Number(rows[0]!["vms.stats.pf_fixed"]));
    expect(rows.slice(1).reduce((a, row) => a + Number(row["cost.cycles"]), 0)).toBe(Number(rows[0]!["cost.cycles"]));
    expect(rows[4]!["host.vmstat.pswpout"]).toBe("4114");
  });

  test("a scenario without phase markers has no phases in --json and an empty phase column in --csv", async () => {
    const csv = join(dir, "plain.csv");
    const r = await runCli(["run", new URL("../../examples/lazy.yaml", import.meta.url).pathname, "--json", "-", "--csv", csv]);
    expect(r.code).toBe(0);
    expect("phases" in JSON.parse(r.stdout)).toBe(false);
    const rows = parse(readFileSync(csv, "utf8"), { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => row["phases.name"])).toEqual([""]);
  });
});
