// SPDX-License-Identifier: MIT
// `memvirt sweep <sweep.yaml> [-o rows.csv] [--shard i/n] [--workers n]`: a grid of variants
// of one scenario, run on this thread and worker threads, one CSV row per run (and VM).
// Sharding splits the grid by run index, so a grid too big for one machine runs as a job array.
//
//   scenario: reclaim-swap.yaml        # relative to the sweep file
//   grid:                              # keys as in `run --compare`
//     mmu: [ept, npt]
//     host.ram: [128MiB, 256MiB]
//   seeds: [1, 2]                      # optional; default: the scenario's seed

import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Command } from "@commander-js/extra-typings";
import { stringify } from "csv-stringify/sync";
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ScenarioError, formatPath, loadScenario } from "../sim/scenario_load.js";
import { bigCount } from "../sim/work_estimate.js";
import { PER_VM_KEYS } from "./compare.js";
import { UsageError } from "./errors.js";
import { loadChecked, readInputText } from "./preflight.js";
import type { Out } from "./format.js";
import { startProgress } from "./progress.js";
import { pause } from "./interrupt.js";
import { STDOUT, prepareOutputs } from "./output.js";
import { RunExit, scenarioInputs } from "./run_cmd.js";
import { csvColumns } from "./report_csv.js";
import { runOnLanes } from "./sweep_lanes.js";
import { endSweepWorkers, takeSweepWorkers } from "./sweep_prestart.js";
import { type SweepResult, type SweepTask, runSweepTaskYielding } from "./sweep_run.js";

const sweepSchema = z.strictObject({
  scenario: z.string().min(1).describe("scenario file, relative to the sweep file"),
  grid: z
    .record(z.string(), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1))
    .refine((g) => Object.keys(g).length > 0, { message: "an empty grid; give at least one key with a list of values" }),
  seeds: z.array(z.number().int().min(0)).min(1).optional(),
});

export interface SweepPlan {
  keys: string[];
  tasks: SweepTask[];
}

/** At most this many runs in one sweep file (each is validated before the first runs); shard bigger grids into several files. */
export const MAX_SWEEP_RUNS = 10_000;

/** `file:line:col: path: message` for an issue of the sweep file, located with the yaml library. */
function sweepIssue(file: string, text: string, path: readonly PropertyKey[], message: string): UsageError {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  let node: unknown = doc.contents;
  let at: { line: number; col: number } = { line: 1, col: 1 };
  for (const seg of path) {
    if (!isMap(node) && !isSeq(node)) break;
    node = (node as { get(k: unknown, keep: true): unknown }).get(seg, true);
    const range = (node as { range?: [number, number] } | undefined)?.range;
    if (range) at = lines.linePos(range[0]);
  }
  const where = path.length === 0 ? "" : `${formatPath(path)}: `;
  return new UsageError(`${file}:${at.line}:${at.col}: ${where}${message}`);
}

export interface SweepOptions {
  /** Skip the bounds on planned work. */
  force?: boolean;
}

/** Every run of the sweep, in a fixed order: the cartesian product of the grid (first key slowest), times the seeds. */
export function planSweep(file: string, text: string, o: SweepOptions = {}): SweepPlan {
  const hint = "(a sweep file has scenario:, grid: {key: [values]} and optionally seeds: [..])";
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = new LineCounter();
    parseDocument(text, { lineCounter: lines });
    const e = doc.errors[0]!;
    const p = lines.linePos(e.pos[0]);
    throw new UsageError(`${file}:${p.line}:${p.col}: ${e.message.split("\n")[0]}; the sweep file must be valid YAML ${hint}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new UsageError(`${file}: ${(e as Error).message}; ${hint}`);
  }
  const r = sweepSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw sweepIssue(file, text, i.path, `${i.message} ${hint}`);
  }
  const sweep = r.data;
  const keys = Object.keys(sweep.grid);
  const seeds: (number | null)[] = sweep.seeds ?? [null];
  const runs = keys.reduce((a, k) => a * sweep.grid[k]!.length, seeds.length);
  if (runs > MAX_SWEEP_RUNS)
    throw sweepIssue(
      file,
      text,
      ["grid"],
      `${bigCount(runs)} runs (the product of the value lists${sweep.seeds ? " and the seeds" : ""}); at most ${bigCount(MAX_SWEEP_RUNS)} in one sweep file: split the grid into several files`,
    );
  const scenarioPath = resolve(dirname(file), sweep.scenario);
  const scenarioTextRead = readInputText(scenarioPath, `scenario ${sweep.scenario} of`, `fix scenario: in ${file}`);
  let vmCount: number;
  try {
    vmCount = loadScenario(scenarioTextRead, scenarioPath).vms.length;
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(`${file}: scenario ${sweep.scenario} is not valid:\n${e.format()}`);
    throw e;
  }
  const combos: Record<string, unknown>[] = [{}];
  for (const k of keys) {
    const next: Record<string, unknown>[] = [];
    for (const c of combos) for (const v of sweep.grid[k]!) next.push({ ...c, [k]: v });
    combos.splice(0, combos.length, ...next);
  }
  const variants: Pick<SweepTask, "label" | "overrides" | "seed">[] = [];
  for (const c of combos) {
    for (const seed of seeds) {
      const overrides: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(c)) {
        if (PER_VM_KEYS.has(k)) for (let i = 0; i < vmCount; i++) overrides[`vms[${i}].${k}`] = v;
        else overrides[k] = v;
      }
      const label = Object.entries(c)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(" ");
      variants.push({ label, overrides, seed });
    }
  }
  // Fail before any run, naming the variant, if one does not validate (traces and planned work included).
  const tasks = variants.map(({ label, overrides, seed }, index): SweepTask => {
    try {
      const scenario = loadChecked(scenarioTextRead, scenarioPath, { overrides, force: o.force === true, runs: variants.length });
      return { index, label, text: scenarioTextRead, name: sweep.scenario, path: scenarioPath, overrides, seed, scenario };
    } catch (e) {
      if (e instanceof ScenarioError) throw new UsageError(`${file}: variant ${label}:\n${e.format()}`);
      throw e;
    }
  });
  return { keys, tasks };
}

/** `2/4` -> the tasks whose index % 4 === 1. */
export function shardOf(spec: string | undefined, tasks: SweepTask[]): SweepTask[] {
  if (spec === undefined) return tasks;
  const m = /^(\d+)\/(\d+)$/.exec(spec);
  if (!m || Number(m[2]) < 1 || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) {
    throw new UsageError(
      `--shard ${spec}: give i/n with 1 <= i <= n, e.g. --shard 2/8 (in a Slurm array: --shard $((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT)`,
    );
  }
  const i = Number(m[1]) - 1;
  const n = Number(m[2]);
  return tasks.filter((t) => t.index % n === i);
}

export function sweepCsv(plan: SweepPlan, results: SweepResult[]): string {
  // The sweep's own columns once (its grid keys as paths in the sweep file: grid.host.ram), then the
  // report's (report_csv.ts), whose `seed` is the run's seed: a failed run's row has it too.
  const cols = csvColumns();
  const seedAt = cols.indexOf("seed");
  const head = ["index", ...plan.keys.map((k) => `grid.${k}`), "error", ...cols];
  const rows: (string | number)[][] = [];
  for (const r of [...results].sort((a, b) => a.index - b.index)) {
    const t = plan.tasks[r.index]!;
    const vals = plan.keys.map((k) => {
      const ov = Object.entries(t.overrides).find(([p]) => p === k || p.endsWith(`].${k}`));
      return ov ? String(ov[1]) : "";
    });
    if (r.error) rows.push([r.index, ...vals, r.error, ...cols.map((_, i) => (i === seedAt ? (t.seed ?? "") : ""))]);
    for (const row of r.rows) rows.push([r.index, ...vals, "", ...row]);
  }
  return stringify([head, ...rows]);
}

/**
 * The runs on `lanes` lanes: this thread and lanes - 1 worker threads, those the executable
 * started early first (sweep_prestart.ts). Without a built worker script (tests on the sources),
 * everything runs here.
 */
async function runTasks(tasks: SweepTask[], lanes: number, onDone: () => void): Promise<SweepResult[]> {
  const script = new URL("./sweep_worker.js", import.meta.url);
  const threads = existsSync(fileURLToPath(script)) ? Math.max(0, Math.min(lanes, tasks.length) - 1) : 0;
  const workers = takeSweepWorkers(threads);
  const unused = endSweepWorkers();
  try {
    while (workers.length < threads) workers.push(new Worker(script));
    return await runOnLanes(tasks, workers, runSweepTaskYielding, pause, onDone);
  } finally {
    await Promise.all([unused, ...workers.map((w) => w.terminate())]);
  }
}

export function sweepCommand(out: Out) {
  return new Command("sweep")
    .description("run a grid of variants of a scenario on this thread and worker threads; one CSV row per run and VM")
    .argument("<sweep>", "sweep file (YAML): scenario, grid, seeds")
    .option("-o, --output <file>", "CSV file to write (default, or -: standard output)")
    .option("--shard <i/n>", "run only the i-th of n shards of the grid (for job arrays)")
    .option("--workers <n>", "threads running the grid, this one included (default: all cores)")
    .option("--force", "run even when the planned work of all runs is beyond the bounds (accesses, VMs, memory)")
    .action(async (file, o) => {
      const workers = o.workers === undefined ? availableParallelism() : Number(o.workers);
      if (!Number.isInteger(workers) || workers < 0 || workers > 1024)
        throw new UsageError(`--workers ${o.workers}: a whole number from 0 to 1024 (0 or 1: run in this thread)`);
      const text = readInputText(file, "sweep file", "give a sweep file (YAML: scenario, grid, seeds)");
      const plan = planSweep(file, text, { force: o.force === true });
      const tasks = shardOf(o.shard, plan.tasks);
      const first = plan.tasks[0];
      const inputs = first ? scenarioInputs(first.path, loadScenario(first.text, first.path)) : [];
      const outputs = prepareOutputs([{ option: "-o/--output", path: o.output ?? STDOUT }], [file, ...inputs], out);
      let results: SweepResult[];
      try {
        const progress = await startProgress(out, "sweep", "runs");
        progress.phase(`${tasks.length} runs on ${Math.min(workers, tasks.length)} threads`, tasks.length);
        let done = 0;
        results = await runTasks(tasks, workers, () => progress.update(++done, tasks.length)).finally(() => progress.stop());
        outputs.get("-o/--output")!.write(sweepCsv(plan, results));
        await outputs.commitAll();
      } finally {
        outputs.discardAll();
      }
      if (!outputs.toStdout)
        out.write(`wrote ${o.output}: ${tasks.length} runs${o.shard ? ` (shard ${o.shard} of ${plan.tasks.length} in all)` : ""}\n`);
      const failed = results.filter((r) => r.error);
      for (const f of failed) out.error(`memvirt: sweep run ${f.index} (${plan.tasks[f.index]!.label}) failed: ${f.error}\n`);
      if (failed.length > 0) throw new RunExit(1);
    });
}
