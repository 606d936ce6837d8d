// SPDX-License-Identifier: MIT
// One run of a sweep: the scenario text with a variant's overrides, on a seed, to CSV rows.
// Used in-process and by the worker threads of `memvirt sweep` (sweep_worker.ts).

import { Engine } from "../sim/engine.js";
import { loadScenario } from "../sim/scenario_load.js";
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
}

export interface SweepResult {
  index: number;
  rows: (string | number)[][];
  /** Set when the run failed; the row then says so. */
  error?: string;
}

export function runSweepTask(t: SweepTask): SweepResult {
  try {
    const scenario = loadScenario(t.text, t.path, { overrides: t.overrides });
    const report = new Engine(scenario, {
      ...(t.seed !== null ? { seed: t.seed } : {}),
      sampleEvery: 0,
      openFile: (p: string) => new FileSource(p),
    }).run();
    report.scenario = t.name;
    return { index: t.index, rows: csvRows(t.label, report) };
  } catch (e) {
    return { index: t.index, rows: [], error: (e as Error).message };
  }
}
