// SPDX-License-Identifier: MIT
// memvirt/node: the library's entry points that read files (Node only; the core, "memvirt",
// takes text and ByteSources so it runs in a browser too).

import { readFileSync } from "node:fs";
import { type RunScenarioOptions, loadScenario, runScenario } from "./api.js";
import { FileSource } from "./cli/file_source.js";
import type { Report } from "./sim/report.js";
import type { Scenario } from "./sim/scenario_schema.js";

export * from "./api.js";
export { FileSource } from "./cli/file_source.js";

/** Reads and validates a scenario file (trace paths in it are resolved against its directory). */
export function loadScenarioFile(path: string): Scenario {
  return loadScenario(readFileSync(path, "utf8"), path);
}

/** Loads and runs a scenario file, reading the traces its steps name from disk; the report names the file. */
export function runScenarioFile(path: string, o: RunScenarioOptions = {}): Promise<Report> {
  return runScenario(loadScenarioFile(path), { openFile: (p) => new FileSource(p), name: path, ...o });
}
