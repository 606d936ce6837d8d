// SPDX-License-Identifier: MIT
// One run of a sweep: a variant's scenario (validated by the sweep command), on a seed, to CSV
// rows. Used in-process and by the worker threads of `memvirt sweep` (sweep_worker.ts), which
// therefore load neither the YAML parser nor the schema.

import { Engine } from "../sim/engine.js";
import type { Report } from "../sim/report.js";
import type { Scenario } from "../sim/scenario_schema.js";
import { FileSource } from "./file_source.js";
import { csvRows } from "./report_csv.js";

export interface SweepTask {
  index: number;
  label: string;
  text: string;
  name: string;
  /** The scenario file's path, which trace paths are relative to. */
  path: string;
  overrides: Record<string, unknown>;
  seed: number | null;
  /** The scenario with the overrides applied, as validated before any run. */
  scenario: Scenario;
}

export interface SweepResult {
  index: number;
  rows: (string | number)[][];
  /** Set when the run failed; the row then says so. */
  error?: string;
}

function engineFor(t: SweepTask): Engine {
  return new Engine(t.scenario, {
    ...(t.seed !== null ? { seed: t.seed } : {}),
    sampleEvery: 0,
    openFile: (p: string) => new FileSource(p),
  });
}

function rowsOf(t: SweepTask, report: Report): SweepResult {
  report.scenario = t.name;
  return { index: t.index, rows: csvRows(t.label, report) };
}

const failedRun = (t: SweepTask, e: unknown): SweepResult => ({ index: t.index, rows: [], error: (e as Error).message });

/** One run, start to end (a worker thread). */
export function runSweepTask(t: SweepTask): SweepResult {
  try {
    return rowsOf(t, engineFor(t).run());
  } catch (e) {
    return failedRun(t, e);
  }
}

/** One run on the main thread, awaiting `pause` between slices so the workers' results are taken meanwhile. */
export async function runSweepTaskYielding(t: SweepTask, pause: () => Promise<void>): Promise<SweepResult> {
  try {
    return rowsOf(t, await engineFor(t).runAsync(pause));
  } catch (e) {
    return failedRun(t, e);
  }
}
