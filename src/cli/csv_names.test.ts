// SPDX-License-Identifier: MIT
// Issue 17 item 4: one naming rule for every CSV column of run, compare and sweep. A report
// column is the value's JSON path with `.` separators (array steps left out: the row is one
// element), spelled as in the JSON, so its unit is the JSON key's; the sweep adds only its own
// `index`, `grid.<key>` (the key's path in the sweep file) and `error`, and `label` is the
// compare JSON's variants[].label. No column twice.

import { readFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import { describe, expect, test } from "vitest";
import { Engine } from "../sim/engine.js";
import type { Report } from "../sim/report.js";
import { loadScenario } from "../sim/scenario_load.js";
import { csvRows, reportCsv } from "./report_csv.js";
import { sweepCsv } from "./sweep_cmd.js";

function run(name: string, seed?: number): Report {
  const path = new URL(`../../examples/${name}.yaml`, import.meta.url);
  const e = new Engine(loadScenario(readFileSync(path, "utf8"), `examples/${name}.yaml`), seed === undefined ? {} : { seed });
  return e.run();
}

/** Does `path` name a value in `json` (arrays stepped over: any element)? */
function resolves(json: unknown, path: string[]): boolean {
  if (path.length === 0) return json === null || typeof json !== "object";
  if (Array.isArray(json)) return json.some((x) => resolves(x, path));
  if (json === null || typeof json !== "object") return false;
  const o = json as Record<string, unknown>;
  return path[0]! in o && resolves(o[path[0]!], path.slice(1));
}

const COMPARE_OWN = new Set(["label"]);
const NAME = /^[a-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

let withPhases: Report | undefined;

/** The headers that break the rule, against the reports whose rows the CSV holds (and one with phases: phases.name is always there). */
function badHeaders(head: string[], reports: Report[], own: (h: string) => boolean): string[] {
  withPhases ??= run("phases");
  const all = [...reports, withPhases];
  const bad = head.filter((h) => !NAME.test(h) || (!own(h) && !all.some((r) => resolves(r, h.split(".")))));
  const seen = new Set<string>();
  for (const h of head) if (seen.has(h) || !seen.add(h)) bad.push(`${h} (twice)`);
  return bad;
}

const headOf = (csv: string) => (parse(csv, { to_line: 1 }) as string[][])[0]!;

describe("CSV columns are JSON paths, each once", () => {
  test("run --csv of a run with phases and of one with a post-copy migration (its columns too)", () => {
    const phases = run("phases");
    const mig = run("migration-postcopy");
    for (const r of [phases, mig]) {
      const head = headOf(reportCsv([{ label: "", report: r }]));
      expect(badHeaders(head, [r], (h) => COMPARE_OWN.has(h))).toEqual([]);
    }
    const head = headOf(reportCsv([{ label: "", report: mig }]));
    expect(head.filter((h) => h.startsWith("migrations."))).toContain("migrations.iterations.dirtyPagesPerSecond");
    expect(head).toContain("vms.qemu.rssBytes");
    expect(head).toContain("host.vmstat.pgfault");
    expect(head).toContain("phases.name");
  });

  test("compare --csv: the same columns, a row per variant and VM; values are the JSON's", () => {
    const a = run("fault-in", 1);
    const b = run("fault-in", 2);
    const csv = reportCsv([
      { label: "seed=1", report: a },
      { label: "seed=2", report: b },
    ]);
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    expect(badHeaders(headOf(csv), [a, b], (h) => COMPARE_OWN.has(h))).toEqual([]);
    expect(rows.map((r) => [r.label, r.seed, r["vms.qemu.rssBytes"], r["host.vmstat.pgfault"]])).toEqual(
      [a, b].map((r, i) => [`seed=${i + 1}`, String(r.seed), String(r.vms[0]!.qemu.rssBytes), String(r.host.vmstat.pgfault)]),
    );
  });

  test("sweep CSV: index, the grid's keys once, error, then the report's columns; a failed run keeps its seed", () => {
    const r = run("fault-in", 3);
    const scenario = loadScenario(readFileSync(new URL("../../examples/fault-in.yaml", import.meta.url), "utf8"), "fault-in.yaml");
    const task = (index: number, seed: number) => ({
      index,
      label: "mmu=ept",
      text: "",
      name: "fault-in.yaml",
      path: "",
      overrides: { "vms[0].mmu": "ept", "host.ram": "256MiB" },
      seed,
      scenario,
    });
    const plan = { keys: ["mmu", "host.ram"], tasks: [task(0, 3), task(1, 4)] };
    const csv = sweepCsv(plan, [
      { index: 0, rows: csvRows("mmu=ept host.ram=256MiB", r) },
      { index: 1, rows: [], error: "boom" },
    ]);
    const head = headOf(csv);
    expect(head.slice(0, 6)).toEqual(["index", "grid.mmu", "grid.host.ram", "error", "label", "scenario"]);
    const own = (h: string) => COMPARE_OWN.has(h) || h === "index" || h === "error" || h === "grid.mmu" || h === "grid.host.ram";
    expect(badHeaders(head, [r], own)).toEqual([]);
    expect(head.filter((h) => h === "seed" || h === "grid.seed")).toEqual(["seed"]);
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    expect(rows.map((x) => [x.index, x["grid.mmu"], x.seed, x.error, x["vms.mmu"]])).toEqual([
      ["0", "ept", "3", "", "ept"],
      ["1", "ept", "4", "boom", ""],
    ]);
  });

  test("the checker of the rule fails on format-1 names and on repeats", () => {
    const r = run("fault-in");
    expect(badHeaders(["seed", "vm", "pf_fixed", "host.pswpout", "vm.overhead", "seed"], [r], () => false)).toEqual([
      "vm",
      "pf_fixed",
      "host.pswpout",
      "vm.overhead",
      "seed (twice)",
    ]);
  });
});
