// SPDX-License-Identifier: MIT
// The library's entry points for running scenarios from another program: load (validate) a
// scenario, run it with a seed, event and progress callbacks and an AbortSignal, get the typed
// report. No node: imports: reading files is memvirt/node's (src/node.ts).

import { EventBus, type SimEvent } from "./hw/events.js";
import type { MmuCore } from "./hw/mmu_core.js";
import { COST_EVENTS } from "./sim/cost.js";
import { Engine } from "./sim/engine.js";
import { Machine } from "./sim/machine.js";
import type { Report } from "./sim/report.js";
import { DEFAULT_SCENARIO_YAML, loadScenario as loadValidated } from "./sim/scenario_load.js";
import type { Scenario } from "./sim/scenario_schema.js";
import type { EventKind, EventMap } from "./sim/sim_events.js";
import { DEFAULT_TRANSLATE, runTranslate, type TranslateOptions, type TranslateReport } from "./sim/translate.js";
import type { ByteSource } from "./workload/trace.js";

export type { PhaseReport } from "./sim/phases.js";
export type { Report, SeriesPoint, VmReport } from "./sim/report.js";
export { REPORT_FORMAT, REPORT_VERSION } from "./sim/report.js";
export type { Scenario } from "./sim/scenario_schema.js";
export { ScenarioError, type ScenarioIssue } from "./sim/scenario_load.js";
export { RunError } from "./sim/engine.js";
export { VmFailure } from "./kvm/kvm.js";
export { EVENT_KINDS, type EventKind, type EventMap } from "./sim/sim_events.js";
export { BufferSource, type ByteSource, TraceError } from "./workload/trace.js";

/** The scenario `memvirt run` runs without a file (the seed story: fault-in, overcommit, reclaim). */
export const BUILT_IN_SCENARIO = DEFAULT_SCENARIO_YAML;

/**
 * One address translated step by step on a scratch machine (`memvirt translate`): options not
 * given take DEFAULT_TRANSLATE's values (a cold EPT 4+4-level walk of a user read: 24 table reads and the data).
 */
export function translate(opts: Partial<TranslateOptions> = {}): TranslateReport {
  return runTranslate({ ...DEFAULT_TRANSLATE, ...opts });
}

/**
 * Parses and validates a scenario (YAML or JSON text). `fileName` appears in messages and trace
 * paths are resolved against it. Throws ScenarioError listing every problem (file:line:col).
 */
export function loadScenario(text: string, fileName = "scenario.yaml"): Scenario {
  return loadValidated(text, fileName, { costEvents: COST_EVENTS.map((e) => e.name) });
}

/** One event of the run: `kind` (see docs/events.md), `t` (guest accesses done) and the kind's fields. */
export type RunEvent = SimEvent & { kind: EventKind };

export interface RunScenarioOptions {
  /** Overrides the scenario's seed (every random choice derives from it). */
  seed?: number;
  /** Called for every event, in order; the run is slower with a listener (events are built only then). */
  onEvent?: (event: RunEvent) => void;
  /** Called now and then with (accesses done, accesses planned); done > total while a trace's length is unknown. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting stops the run at its next yield (every few thousand accesses); runScenario then rejects with signal.reason. */
  signal?: AbortSignalLike;
  /** Sample the time series every this many accesses (default: about 100 points per run). */
  sampleEvery?: number;
  /** "full" adds the costly checks (each translation against the guest's tables); default "basic". */
  checks?: "basic" | "full";
  /** The MMU implementation: "wasm" (default) or "js" (the reference); results are identical. */
  mmuCore?: MmuCore;
  /** Opens a trace file a `trace` step names; memvirt/node's runScenarioFile passes one that reads files. */
  openFile?: (path: string) => ByteSource;
  /** The name the report carries in `scenario` (default "api"). */
  name?: string;
}

/** The part of the standard AbortSignal a run uses (the core is built without the DOM and Node typings). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
}

// The host's timer (browsers and Node both have it); declared here because the core's typings hold neither.
declare const setTimeout: (callback: () => void, ms: number) => unknown;

/** Milliseconds between two yields to the event loop (so an abort or a timer can run). */
const YIELD_MS = 20;

function throwIfAborted(signal: AbortSignalLike | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error("the run was aborted");
}

function pauser(signal: AbortSignalLike | undefined): () => Promise<void> {
  let last = Date.now();
  return async () => {
    throwIfAborted(signal);
    const now = Date.now();
    if (now - last < YIELD_MS) return;
    last = now;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    throwIfAborted(signal);
  };
}

/**
 * Runs a scenario (a validated Scenario, or YAML/JSON text, which is loaded first) and resolves
 * with the report `memvirt run --json` writes (docs/report.md). Rejects with ScenarioError for a
 * bad scenario, RunError or VmFailure when the run cannot go on, and signal.reason on abort.
 */
export async function runScenario(scenario: Scenario | string, o: RunScenarioOptions = {}): Promise<Report> {
  const s = typeof scenario === "string" ? loadScenario(scenario, o.name ?? "scenario.yaml") : scenario;
  throwIfAborted(o.signal);
  const bus = new EventBus<EventMap>();
  const onEvent = o.onEvent;
  if (onEvent) bus.listen((e) => onEvent(e as RunEvent));
  const machine = new Machine(s, bus, o.mmuCore ? { mmuCore: o.mmuCore } : {});
  const engine = new Engine(
    s,
    {
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.sampleEvery !== undefined ? { sampleEvery: o.sampleEvery } : {}),
      ...(o.checks ? { checks: o.checks } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      ...(o.openFile ? { openFile: o.openFile } : {}),
    },
    machine,
  );
  const report = await engine.runAsync(pauser(o.signal));
  report.scenario = o.name ?? "api";
  return report;
}
