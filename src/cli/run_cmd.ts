// SPDX-License-Identifier: MIT
// `memvirt run [scenario]`: load a scenario (the built-in story without one), run it, and
// print the text report, or write the JSON report and the event stream. Result files are
// written under a temporary name beside the target and renamed only after success, so a
// failed or invalid run never leaves a partial file.

import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Command } from "@commander-js/extra-typings";
import { EventBus, type SimEvent } from "../hw/events.js";
import { COST_EVENTS } from "../sim/cost.js";
import { Engine, RunError } from "../sim/engine.js";
import { VmFailure } from "../sim/guest_port.js";
import { Machine } from "../sim/machine.js";
import type { Report } from "../sim/report.js";
import { DEFAULT_SCENARIO_YAML, loadScenario, ScenarioError } from "../sim/scenario_load.js";
import type { Scenario } from "../sim/scenario_schema.js";
import { UsageError } from "./errors.js";
import { FileSource } from "./file_source.js";
import type { Out } from "./format.js";
import { runCompare } from "./compare.js";
import { reportCsv } from "./report_csv.js";
import { formatReport } from "./report_text.js";

/** Exit code of a scenario that validated but could not run to the end (a VM failed). */
export const EXIT_RUN_FAILED = 1;

export const BUILT_IN = "built-in";

/** A result file written under a temporary name in the target's directory, renamed on commit. */
class PendingFile {
  private fd: number;
  private readonly tmp: string;
  private buf: string[] = [];
  private bufLen = 0;
  private done = false;

  constructor(
    readonly target: string,
    what: string,
  ) {
    this.tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
    try {
      this.fd = openSync(this.tmp, "wx");
    } catch (e) {
      throw new UsageError(`${what} ${target}: cannot write there (${describeFsError(e)}); give a path in a writable directory`);
    }
  }

  write(s: string): void {
    this.buf.push(s);
    this.bufLen += s.length;
    if (this.bufLen >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.bufLen === 0) return;
    writeSync(this.fd, this.buf.join(""));
    this.buf = [];
    this.bufLen = 0;
  }

  commit(): void {
    this.flush();
    closeSync(this.fd);
    this.done = true;
    renameSync(this.tmp, this.target);
  }

  discard(): void {
    if (this.done) return;
    this.done = true;
    try {
      closeSync(this.fd);
    } catch {}
    rmSync(this.tmp, { force: true });
  }
}

function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "it is a directory";
  if (code === "ENOTDIR") return "a part of the path is not a directory";
  return (e as Error).message;
}

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
  try {
    return { text: readFileSync(file, "utf8"), name: file };
  } catch (e) {
    throw new UsageError(`cannot read scenario ${file}: ${describeFsError(e)}`);
  }
}

/** Reads and validates the scenario; exits 2 (UsageError / ScenarioError) before anything runs. */
function readScenario(file: string | undefined, overrides?: Record<string, unknown>): { scenario: Scenario; name: string } {
  const { text, name } = scenarioText(file);
  return { scenario: loadScenario(text, name, { costEvents: costNames(), ...(overrides ? { overrides } : {}) }), name };
}

export { readScenario };

function costNames(): string[] {
  return COST_EVENTS.map((e) => e.name);
}

/** A `\r` progress line on stderr, at most ten updates a second. */
function progressLine(out: Out): { update(done: number, total: number): void; clear(): void } {
  let last = 0;
  let shown = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      // A trace's length is not known until its end: then only the count moves.
      if (done > total) out.error(`\rmemvirt: running... ${done.toLocaleString("en-US")} accesses`);
      else {
        const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
        out.error(`\rmemvirt: running... ${pct}% (${done.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} accesses)`);
      }
    },
    clear() {
      if (shown) out.error("\r\u001b[K");
      shown = false;
    },
  };
}

export interface RunCommandOptions {
  compare?: string;
  csv?: string;
  json?: string | true;
  events?: string;
  seed?: string;
  sample?: string;
  check?: string;
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

/** The whole command, for main.ts and tests: returns the exit code for results main() does not map. */
export function runScenario(out: Out, file: string | undefined, o: RunCommandOptions): number {
  if (o.compare !== undefined) return runCompare(out, file, o.compare, o);
  const seed = o.seed === undefined ? undefined : parseCount("--seed", o.seed, "a seed");
  const sampleEvery = o.sample === undefined ? undefined : parseCount("--sample", o.sample, "a number of accesses");
  if (o.check !== undefined && o.check !== "basic" && o.check !== "full")
    throw new UsageError(`--check: '${o.check}' is not a check level; use basic (the default) or full`);
  const jsonToStdout = o.json === true || o.json === "-";
  const jsonFile = typeof o.json === "string" && o.json !== "-" ? o.json : undefined;
  for (const [flag, target] of [
    ["--json", jsonFile],
    ["--events", o.events],
    ["--csv", o.csv],
  ] as const) {
    if (target === undefined) continue;
    if ((file !== undefined && resolve(target) === resolve(file)) || /\.ya?ml$/i.test(target)) {
      throw new UsageError(
        `${flag} ${target}: that looks like a scenario file, which would be overwritten; put the scenario first (memvirt run ${target}${flag === "--json" ? " --json" : ""}) or give an output name like out.json${flag === "--events" ? "l" : ""}`,
      );
    }
  }
  if (jsonFile !== undefined && o.events !== undefined && resolve(jsonFile) === resolve(o.events)) {
    throw new UsageError(`--json and --events both name ${jsonFile}; give two different files`);
  }

  let loaded: { scenario: Scenario; name: string };
  try {
    loaded = readScenario(file);
  } catch (e) {
    if (e instanceof ScenarioError) {
      out.error(`${e.format()}\n`);
      return 2;
    }
    throw e;
  }
  const { scenario, name } = loaded;

  const pending: PendingFile[] = [];
  const stderrTTY = (out as { errIsTTY?: boolean }).errIsTTY ?? (out.isTTY && process.stderr.isTTY === true);
  const progress = stderrTTY ? progressLine(out) : null;
  try {
    const json = jsonFile !== undefined ? new PendingFile(jsonFile, "--json") : null;
    if (json) pending.push(json);
    const events = o.events !== undefined ? new PendingFile(o.events, "--events") : null;
    if (events) pending.push(events);
    const csv = o.csv !== undefined ? new PendingFile(o.csv, "--csv") : null;
    if (csv) pending.push(csv);

    const bus = new EventBus();
    // Listen before the machine exists, so the stream includes what happens while it is built.
    if (events) bus.listen((e: SimEvent) => events.write(`${JSON.stringify(e)}\n`));
    let report: Report;
    try {
      const machine = new Machine(scenario, bus);
      const engine = new Engine(
        scenario,
        {
          ...(seed !== undefined ? { seed } : {}),
          ...(sampleEvery !== undefined ? { sampleEvery } : {}),
          ...(o.check === "full" ? { checks: "full" as const } : {}),
          ...(progress ? { onProgress: (d: number, t: number) => progress.update(d, t) } : {}),
          openFile: (path: string) => new FileSource(path),
        },
        machine,
      );
      report = engine.run();
    } catch (e) {
      if (e instanceof RunError || e instanceof VmFailure) {
        out.error(`memvirt: run failed: ${e.message}\n`);
        return EXIT_RUN_FAILED;
      }
      throw e;
    } finally {
      progress?.clear();
    }
    report.scenario = name;

    const jsonText = jsonFile !== undefined || jsonToStdout ? `${JSON.stringify(report, null, 2)}\n` : "";
    if (json) json.write(jsonText);
    if (csv) csv.write(reportCsv([{ label: "", report }]));
    for (const p of pending) p.commit();
    if (jsonToStdout) out.write(jsonText);
    else out.write(formatReport(out, report, scenario));
    return checkOutcome(out, report);
  } finally {
    for (const p of pending) p.discard();
  }
}

export function runCommand(out: Out) {
  return new Command("run")
    .description(
      "run a scenario (YAML or JSON; without one, the built-in story: a guest bigger than its host, into swap and back) and report every counter",
    )
    .argument("[scenario]", "scenario file, YAML or JSON (see examples/)")
    .option("--json [file]", "write the report as JSON to file; without a file or with -, print it instead of the text report")
    .option("--csv <file>", "write the report's counters as CSV: a row per VM (with --compare, per variant and VM)")
    .option("--events <file>", "write every event of the run to file, one JSON object per line (JSONL)")
    .option(
      "--compare <key=values>",
      "run the scenario once per value of a key (mmu, backing, prealloc, vcpus, host.ram, host.swap, host.thp, or any path like vms[0].ram) on the same seed, and print one table",
    )
    .option("--seed <n>", "override the scenario's seed")
    .option("--sample <n>", "sample the time series every n accesses (0: no series; default: about 100 points)")
    .option(
      "--check <level>",
      "basic: data, stale mappings, host and shadow MMU invariants at the end (default); full: also every shadow translation against the guest's walk and the invariants every 64 slices (slower)",
    )
    .action((file, o) => {
      const code = runScenario(out, file, o);
      if (code !== 0) throw new RunExit(code);
    });
}

/** Carries a non-zero exit code out of a commander action; main() returns its code silently. */
export class RunExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
