// SPDX-License-Identifier: MIT
// `memvirt sweep <sweep.yaml> [-o rows.csv] [--shard i/n] [--workers n]`: a grid of variants
// of one scenario, run on worker threads, one CSV row per run (and VM). Sharding splits the
// grid by run index, so a grid too big for one machine runs as a job array.
//
//   scenario: reclaim-swap.yaml        # relative to the sweep file
//   grid:                              # keys as in `run --compare`
//     mmu: [ept, npt]
//     host.ram: [128MiB, 256MiB]
//   seeds: [1, 2]                      # optional; default: the scenario's seed

import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "@commander-js/extra-typings";
import { stringify } from "csv-stringify/sync";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ScenarioError, loadScenario } from "../sim/scenario_load.js";
import { PER_VM_KEYS } from "./compare.js";
import { writeAtomically } from "./compare.js";
import { UsageError } from "./errors.js";
import type { Out } from "./format.js";
import { RunExit } from "./run_cmd.js";
import { csvColumns } from "./report_csv.js";
import { type SweepResult, type SweepTask, runSweepTask } from "./sweep_run.js";

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

/** Every run of the sweep, in a fixed order: the cartesian product of the grid (first key slowest), times the seeds. */
export function planSweep(file: string, text: string): SweepPlan {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new UsageError(`${file}: not YAML: ${(e as Error).message}`);
  }
  const r = sweepSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new UsageError(
      `${file}: ${i.path.join(".") || "(top)"}: ${i.message} (a sweep file has scenario:, grid: {key: [values]} and optionally seeds: [..])`,
    );
  }
  const sweep = r.data;
  const scenarioPath = resolve(dirname(file), sweep.scenario);
  let scenarioTextRead: string;
  try {
    scenarioTextRead = readFileSync(scenarioPath, "utf8");
  } catch {
    throw new UsageError(`${file}: scenario ${sweep.scenario}: cannot read ${scenarioPath}`);
  }
  const vmCount = loadScenario(scenarioTextRead, scenarioPath).vms.length;
  const keys = Object.keys(sweep.grid);
  const combos: Record<string, unknown>[] = [{}];
  for (const k of keys) {
    const next: Record<string, unknown>[] = [];
    for (const c of combos) for (const v of sweep.grid[k]!) next.push({ ...c, [k]: v });
    combos.splice(0, combos.length, ...next);
  }
  const seeds: (number | null)[] = sweep.seeds ?? [null];
  const tasks: SweepTask[] = [];
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
      tasks.push({ index: tasks.length, label, text: scenarioTextRead, name: sweep.scenario, overrides, seed });
    }
  }
  // Fail early, naming the variant, if one does not validate.
  for (const t of tasks) {
    try {
      loadScenario(t.text, t.name, { overrides: t.overrides });
    } catch (e) {
      if (e instanceof ScenarioError) throw new UsageError(`${file}: variant ${t.label}:\n${e.format()}`);
      throw e;
    }
  }
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
  const head = ["index", ...plan.keys, "seed", "error", ...csvColumns()];
  const rows: (string | number)[][] = [];
  for (const r of [...results].sort((a, b) => a.index - b.index)) {
    const t = plan.tasks[r.index]!;
    const vals = plan.keys.map((k) => {
      const ov = Object.entries(t.overrides).find(([p]) => p === k || p.endsWith(`].${k}`));
      return ov ? String(ov[1]) : "";
    });
    const seed = t.seed ?? "";
    if (r.error) rows.push([r.index, ...vals, seed, r.error]);
    for (const row of r.rows) rows.push([r.index, ...vals, seed, "", ...row]);
  }
  return stringify([head, ...rows]);
}

async function runTasks(tasks: SweepTask[], workers: number, onDone: () => void): Promise<SweepResult[]> {
  const workerFile = fileURLToPath(new URL("./sweep_worker.js", import.meta.url));
  if (workers <= 1 || !existsSync(workerFile)) {
    return tasks.map((t) => {
      const r = runSweepTask(t);
      onDone();
      return r;
    });
  }
  // piscina and cli-progress load only for a sweep (every command would pay for them at start-up).
  const { Piscina } = await import("piscina");
  const pool = new Piscina({ filename: workerFile, maxThreads: workers, minThreads: 1 });
  try {
    return await Promise.all(
      tasks.map(async (t) => {
        const r = (await pool.run(t)) as SweepResult;
        onDone();
        return r;
      }),
    );
  } finally {
    await pool.destroy();
  }
}

export function sweepCommand(out: Out) {
  return new Command("sweep")
    .description("run a grid of variants of a scenario on worker threads; one CSV row per run and VM")
    .argument("<sweep>", "sweep file (YAML): scenario, grid, seeds")
    .option("-o, --output <file>", "CSV file to write (default: standard output)")
    .option("--shard <i/n>", "run only the i-th of n shards of the grid (for job arrays)")
    .option("--workers <n>", "worker threads (default: all cores)")
    .action(async (file, o) => {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch {
        throw new UsageError(`cannot read sweep file ${file}`);
      }
      const plan = planSweep(file, text);
      const tasks = shardOf(o.shard, plan.tasks);
      const workers = o.workers === undefined ? availableParallelism() : Number(o.workers);
      if (!Number.isInteger(workers) || workers < 0) throw new UsageError(`--workers ${o.workers}: a whole number`);
      const cliProgress = process.stderr.isTTY ? (await import("cli-progress")).default : null;
      const bar = cliProgress
        ? new cliProgress.SingleBar(
            { format: "sweep [{bar}] {value}/{total} runs, eta {eta}s", stream: process.stderr },
            cliProgress.Presets.shades_classic,
          )
        : null;
      bar?.start(tasks.length, 0);
      const results = await runTasks(tasks, workers, () => bar?.increment());
      bar?.stop();
      const csv = sweepCsv(plan, results);
      if (o.output) {
        writeAtomically(o.output, csv);
        out.write(`wrote ${o.output}: ${tasks.length} runs${o.shard ? ` (shard ${o.shard} of ${plan.tasks.length} in all)` : ""}\n`);
      } else out.write(csv);
      const failed = results.filter((r) => r.error);
      for (const f of failed) out.error(`memvirt: sweep run ${f.index} (${plan.tasks[f.index]!.label}) failed: ${f.error}\n`);
      if (failed.length > 0) throw new RunExit(1);
    });
}
