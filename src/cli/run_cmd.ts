// SPDX-License-Identifier: MIT
// `memvirt run [scenario]`: load a scenario (the built-in story without one), run it, and
// print the text report, or write the JSON report, the CSV and the event stream (output.ts:
// prepared before the run, committed together after it, none on failure).

import { Command } from "@commander-js/extra-typings";
import { EventBus } from "../hw/events.js";
import type { MmuCore } from "../hw/mmu_core.js";
import { Engine, RunError } from "../sim/engine.js";
import { VmFailure } from "../kvm/kvm.js";
import { Machine } from "../sim/machine.js";
import type { Report } from "../sim/report.js";
import { DEFAULT_SCENARIO_YAML, ScenarioError } from "../sim/scenario_load.js";
import type { Scenario } from "../sim/scenario_schema.js";
import type { EventMap } from "../sim/sim_events.js";
import { EXIT_RUN_FAILED, UsageError } from "./errors.js";
import { FileSource } from "./file_source.js";
import type { Out } from "./format.js";
import { pause } from "./interrupt.js";
import { prepareOutputs, requests } from "./output.js";
import { runCompare } from "./compare.js";
import { type CheckedLoad, loadChecked, readInputText } from "./preflight.js";
import { reportCsv } from "./report_csv.js";
import { formatReport } from "./report_text.js";
import { formatExitStat } from "./kvm_stat.js";
import { formatStats } from "./stats_flat.js";
import { eventFilterOptions, eventWriter } from "./events_opts.js";
import { startProgress } from "./progress.js";

export { EXIT_RUN_FAILED };

export const BUILT_IN = "built-in";

export function parseCount(flag: string, text: string, what: string): number {
  const t = text.trim().replaceAll("_", "");
  if (!/^[0-9]+$/.test(t) || !Number.isSafeInteger(Number(t))) {
    throw new UsageError(`${flag}: '${text}' is not ${what}; give a whole number like 42`);
  }
  return Number(t);
}

/** The scenario's text and name (the built-in one without a file); UsageError if it cannot be read. */
export function scenarioText(file: string | undefined): { text: string; name: string } {
  if (file === undefined) return { text: DEFAULT_SCENARIO_YAML, name: BUILT_IN };
  return { text: readInputText(file, "scenario", "give a scenario file (YAML or JSON; see examples/)"), name: file };
}

/** Reads and validates the scenario, its traces and its planned work; exits 2 (UsageError / ScenarioError) before anything runs. */
function readScenario(file: string | undefined, o: CheckedLoad = {}): { scenario: Scenario; name: string } {
  const { text, name } = scenarioText(file);
  return { scenario: loadChecked(text, name, o), name };
}

export { readScenario };

export interface RunCommandOptions {
  compare?: string;
  csv?: string;
  json?: string | true;
  events?: string;
  seed?: string;
  sample?: string;
  force?: boolean;
  check?: string;
  mmuCore?: string;
  // issue 17: flat counters, the perf-kvm-stat-shaped exit table
  stats?: string;
  kvmStat?: boolean;
  eventsKinds?: string;
  eventsRange?: string;
  eventsPage?: string;
  eventsFirst?: string;
  eventsFormat?: string;
}

/** --mmu-core: which MMU implementation the machine runs on (undefined: the default, the wasm core). */
export function parseMmuCore(v: string | undefined): MmuCore | undefined {
  if (v === undefined || v === "wasm" || v === "js") return v;
  throw new UsageError(`--mmu-core: '${v}' is not an MMU; use wasm (the WebAssembly core, the default) or js (the JS reference)`);
}

/**
 * The run's outcome: 0 when the checker found nothing, else EXIT_RUN_FAILED with one last line
 * (on stderr, after the report) saying what it found.
 */
export function checkOutcome(out: Out, report: Report, label?: string): number {
  const c = report.check;
  if (c.dataErrors === 0 && c.invariantViolations === 0) return 0;
  const what = [
    c.dataErrors > 0 ? `${c.dataErrors} data error${c.dataErrors === 1 ? "" : "s"}` : "",
    c.invariantViolations > 0
      ? `${c.invariantViolations} invariant violation${c.invariantViolations === 1 ? "" : "s"} (stale mappings included)`
      : "",
  ].filter((x) => x !== "");
  out.error(
    `memvirt: run${label === undefined ? "" : ` ${label}`} is not clean: the checker found ${what.join(" and ")}; exit ${EXIT_RUN_FAILED}\n`,
  );
  return EXIT_RUN_FAILED;
}

/** The files a run reads: the scenario and every trace its steps name (outputs may not overwrite them). */
export function scenarioInputs(file: string | undefined, scenario: Scenario): string[] {
  const inputs = file === undefined ? [] : [file];
  for (const vm of scenario.vms)
    for (const p of vm.processes) for (const st of p.steps) if (st.kind === "trace") inputs.push((st as { path?: string }).path ?? st.file);
  return inputs;
}

/** Runs the engine, letting signal handlers in between slices. */
export function runEngine(engine: Engine): Promise<Report> {
  return engine.runAsync(pause);
}

/** The whole command, for main.ts and tests: returns the exit code for results main() does not map. */
export async function runScenario(out: Out, file: string | undefined, o: RunCommandOptions): Promise<number> {
  if (o.compare !== undefined) return runCompare(out, file, o.compare, o);
  const seed = o.seed === undefined ? undefined : parseCount("--seed", o.seed, "a seed");
  const sampleEvery = o.sample === undefined ? undefined : parseCount("--sample", o.sample, "a number of accesses");
  if (o.check !== undefined && o.check !== "basic" && o.check !== "full")
    throw new UsageError(`--check: '${o.check}' is not a check level; use basic (the default) or full`);
  const wanted = requests([
    ["--json", o.json],
    ["--events", o.events],
    ["--csv", o.csv],
    ["--stats", o.stats],
  ]);
  for (const { option, path } of wanted) {
    // `memvirt run --json s.yaml` reads as --json's file with no scenario: do not overwrite s.yaml with the built-in run.
    if (/\.ya?ml$/i.test(path)) {
      throw new UsageError(
        `${option} ${path}: that looks like a scenario file, which would be overwritten; put the scenario first (memvirt run ${path}${option === "--json" ? " --json" : ""}) or give an output name like out.json${option === "--events" ? "l" : ""}`,
      );
    }
  }

  const eventFilter = eventFilterOptions(o, o.events);
  let loaded: { scenario: Scenario; name: string };
  try {
    loaded = readScenario(file, { force: o.force === true });
  } catch (e) {
    if (e instanceof ScenarioError) {
      out.error(`${e.format()}\n`);
      return 2;
    }
    throw e;
  }
  const { scenario, name } = loaded;
  const outputs = prepareOutputs(wanted, scenarioInputs(file, scenario), out);
  const progress = await startProgress(out, "run", "accesses");
  progress.phase(`running ${name}`);
  try {
    const json = outputs.get("--json");
    const events = outputs.get("--events");
    const csv = outputs.get("--csv");
    const bus = new EventBus<EventMap>();
    // Listen before the machine exists, so the stream includes what happens while it is built.
    if (events) bus.listen(eventWriter(o, eventFilter, (s) => events.write(s)));
    let report: Report;
    try {
      const mmuCore = parseMmuCore(o.mmuCore);
      const machine = new Machine(scenario, bus, mmuCore ? { mmuCore } : {});
      const engine = new Engine(
        scenario,
        {
          ...(seed !== undefined ? { seed } : {}),
          ...(sampleEvery !== undefined ? { sampleEvery } : {}),
          ...(o.check === "full" ? { checks: "full" as const } : {}),
          onProgress: (d: number, t: number) => progress.update(d, t),
          openFile: (path: string) => new FileSource(path),
        },
        machine,
      );
      report = await runEngine(engine);
    } catch (e) {
      if (e instanceof RunError || e instanceof VmFailure) {
        out.error(`memvirt: run failed: ${e.message}\n`);
        return EXIT_RUN_FAILED;
      }
      throw e;
    } finally {
      progress.stop();
    }
    report.scenario = name;

    if (json) json.write(`${JSON.stringify(report, null, 2)}\n`);
    if (csv) csv.write(reportCsv([{ label: "", report }]));
    outputs.get("--stats")?.write(formatStats(report));
    await outputs.commitAll();
    // Standard output carries an output given `-`, and nothing else.
    if (!outputs.toStdout) out.write(o.kvmStat ? report.vms.map(formatExitStat).join("\n") : formatReport(out, report, scenario));
    return checkOutcome(out, report);
  } finally {
    outputs.discardAll();
  }
}

export function runCommand(out: Out) {
  return new Command("run")
    .description(
      "run a scenario (YAML or JSON; without one, the built-in story: a guest bigger than its host, into swap and back) and report every counter",
    )
    .argument("[scenario]", "scenario file, YAML or JSON (see examples/)")
    .option("--json [file]", "write the report as JSON to file; without a file or with -, print it instead of the text report")
    .option("--csv <file>", "write the report's counters as CSV: a row per VM (with --compare, per variant and VM); - for standard output")
    .option("--events <file>", "write every event of the run to file, one JSON object per line (JSONL); - for standard output")
    .option(
      "--compare <key=values>",
      "run the scenario once per value of a key (mmu, backing, prealloc, vcpus, host.ram, host.swap, host.thp, or any path like vms[0].ram) on the same seed, and print one table",
    )
    .option(
      "--stats <file>",
      "write every counter as `name value # description`, one per line (like /proc/vmstat, gem5's stats.txt); - for standard output",
    )
    .option(
      "--kvm-stat",
      "print the exits by reason as `perf kvm stat report` does (Samples, Time%, Min/Max/Avg, in cycles of the cost model) instead of the text report",
    )
    .option("--events-kinds <kinds>", "with --events: only these kinds, comma-separated; kvm.* takes a layer (host.fault,kvm.*)")
    .option("--events-range <lo-hi>", "with --events: only events with an address (gpa, gva, hva, range start) in [lo, hi), hex or decimal")
    .option(
      "--events-page <space:addr>",
      "with --events: one page's life, gpa:ADDR or hva:ADDR (its gfn, hva, frame and swap slot, followed as they change)",
    )
    .option("--events-first <n>", "with --events: only the first n events kept")
    .option("--events-format <format>", "with --events: jsonl (default; numbers numeric) or text (a line per event, addresses in hex)")
    .option("--seed <n>", "override the scenario's seed")
    .option("--sample <n>", "sample the time series every n accesses (0: no series; default: about 100 points)")
    .option("--force", "run even when the planned work is beyond the bounds (accesses, VMs, memory; see README)")
    .option("--mmu-core <core>", "wasm: the vCPUs' MMU runs in the WebAssembly core (default); js: the JS reference MMU (the same results)")
    .option(
      "--check <level>",
      "basic: data, stale mappings, host and shadow MMU invariants at the end (default); full: also every shadow translation against the guest's walk and the invariants every 64 slices (slower)",
    )
    .action(async (file, o) => {
      const code = await runScenario(out, file, o);
      if (code !== 0) throw new RunExit(code);
    });
}

/** Carries a non-zero exit code out of a commander action; main() returns its code silently. */
export class RunExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
