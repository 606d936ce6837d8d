// SPDX-License-Identifier: MIT
// The simulation worker: loads scenarios, runs the engine, walks translations, and
// collects the story's events, with the same library code `memvirt run` and `memvirt
// translate` use, so the page shows the numbers the CLI prints for the same scenario and
// seed. It runs one request at a time; the page cancels a run by terminating the worker.

import { EventBus, type SimEvent } from "../hw/events.js";
import { COST_EVENTS } from "../sim/cost.js";
import { Engine, RunError } from "../sim/engine.js";
import { VmFailure } from "../kvm/kvm.js";
import { Machine } from "../sim/machine.js";
import { loadScenario, ScenarioError } from "../sim/scenario_load.js";
import type { Scenario } from "../sim/scenario_schema.js";
import type { EventMap } from "../sim/sim_events.js";
import { runTranslate } from "../sim/translate.js";
import { BufferSource } from "../workload/trace.js";
import type { QuizRequest, RunRequest, StoryRequest, TranslateRequest, WorkerReply, WorkerRequest } from "./protocol.js";
import { FrameTracker, frameMap } from "./frame_map.js";
import { DEFAULT_COLLECTOR, StoryCollector } from "./story_collect.js";
import { FocusTracker, storyTrees } from "./story_trees.js";
import { PageFollower } from "./story_follow.js";
import { shadowWalk } from "./shadow_walk.js";
import { quizRun } from "./quiz_run.js";

interface WorkerScope {
  postMessage(message: WorkerReply): void;
  onmessage: ((ev: MessageEvent<WorkerRequest>) => void) | null;
}
const ctx = self as unknown as WorkerScope;

const COST_NAMES = COST_EVENTS.map((e) => e.name);
/** Progress messages at most this often (ms). */
const PROGRESS_MS = 100;
/** Steady-state windows spread over a story's run. */
const STORY_SAMPLES = 24;

function post(m: WorkerReply): void {
  ctx.postMessage(m);
}

function load(req: RunRequest | StoryRequest): Scenario | null {
  try {
    const overrides = req.overrides;
    return loadScenario(req.text, req.fileName, { costEvents: COST_NAMES, ...(overrides ? { overrides } : {}) });
  } catch (e) {
    if (e instanceof ScenarioError) {
      post({ type: "scenario-error", id: req.id, issues: [...e.issues], message: e.format() });
      return null;
    }
    throw e;
  }
}

function progress(id: number): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - last < PROGRESS_MS) return;
    last = now;
    post({ type: "progress", id, done, total });
  };
}

function openFileFrom(files: Record<string, Uint8Array> | undefined) {
  return (path: string) => {
    const base = path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
    const bytes = files?.[path] ?? files?.[base];
    if (!bytes) throw new Error(`no trace file named ${base} was attached; add it with "Trace files" beside the editor`);
    return new BufferSource(bytes);
  };
}

function runError(id: number, e: unknown): void {
  if (e instanceof RunError || e instanceof VmFailure) post({ type: "error", id, message: `run failed: ${e.message}` });
  else post({ type: "error", id, message: `internal error: ${(e as Error).message} (this is a bug in memvirt)` });
}

function run(req: RunRequest): void {
  const scenario = load(req);
  if (!scenario) return;
  try {
    const bus = new EventBus<EventMap>();
    const machine = new Machine(scenario, bus);
    const engine = new Engine(
      scenario,
      { ...(req.seed !== undefined ? { seed: req.seed } : {}), onProgress: progress(req.id), openFile: openFileFrom(req.files) },
      machine,
    );
    const report = engine.run();
    report.scenario = req.fileName;
    post({ type: "report", id: req.id, report });
  } catch (e) {
    runError(req.id, e);
  }
}

function stepName(scenario: Scenario, e: SimEvent): string {
  const vm = scenario.vms.find((v) => v.name === e.vm);
  const proc = vm?.processes.find((p) => p.name === e.process);
  const step = proc?.steps[Number(e.step)] as Record<string, unknown> | undefined;
  if (!step) return `step ${e.step}`;
  const parts = [`${e.process} step ${e.step}: ${String(step.kind)}`];
  if (typeof step.name === "string") parts.push(step.name);
  if (typeof step.op === "string") parts.push(`(${step.op})`);
  if (typeof step.accesses === "number") parts.push(`(${step.accesses.toLocaleString("en-US")} accesses)`);
  return parts.join(" ");
}

function story(req: StoryRequest): void {
  const scenario = load(req);
  if (!scenario) return;
  let machine: Machine | null = null;
  let engine: Engine | null = null;
  const tracker = new FrameTracker();
  const focus = new FocusTracker(() => machine);
  const follower = new PageFollower(() => machine);
  const collector = new StoryCollector(
    {
      gauges: () => (machine ? gauges(machine) : {}),
      accesses: () => engine?.accesses ?? 0,
      stepName: (e) => stepName(scenario, e),
      frames: () => (machine ? frameMap(machine, tracker) : null),
      trees: () => (machine ? storyTrees(machine, focus.focus) : null),
      follow: (e, late) => follower.follow(e, late),
    },
    { ...DEFAULT_COLLECTOR, ...(req.maxEvents !== undefined ? { maxEvents: req.maxEvents } : {}) },
  );
  const flush = () => {
    const items = collector.take();
    if (items.length > 0) post({ type: "story-items", id: req.id, items });
  };
  try {
    const bus = new EventBus<EventMap>();
    // Listen before the machine exists, so the story starts with QEMU reserving guest RAM.
    bus.listen((e) => {
      tracker.onEvent(e);
      focus.onEvent(e);
      follower.onEvent(e);
      collector.onEvent(e);
    });
    machine = new Machine(scenario, bus);
    flush();
    const report = progress(req.id);
    let nextSample = 0;
    let lastFlush = performance.now();
    engine = new Engine(
      scenario,
      {
        ...(req.seed !== undefined ? { seed: req.seed } : {}),
        openFile: openFileFrom(req.files),
        onProgress: (done, total) => {
          const every = Math.max(1, Math.floor(total / STORY_SAMPLES));
          if (nextSample === 0) nextSample = every;
          if (done >= nextSample) {
            collector.arm(`steady state at ${done.toLocaleString("en-US")} accesses`);
            while (nextSample <= done) nextSample += every;
          }
          report(done, total);
          const now = performance.now();
          if (now - lastFlush > PROGRESS_MS) {
            lastFlush = now;
            flush();
          }
        },
      },
      machine,
    );
    const r = engine.run();
    r.scenario = req.fileName;
    const last = collector.finish();
    if (last.length > 0) post({ type: "story-items", id: req.id, items: last });
    post({ type: "story-done", id: req.id, events: collector.seen, kept: collector.kept, report: r });
  } catch (e) {
    flush();
    runError(req.id, e);
  }
}

/** The state the story's live panels show beside the counts: host gauges, and per VM its RSS and EPT/NPT leaves. */
function gauges(m: Machine): Record<string, number> {
  const v = m.host.vmstat();
  const g: Record<string, number> = {
    nr_free_pages: v.nr_free_pages ?? 0,
    nr_active_anon: v.nr_active_anon ?? 0,
    nr_inactive_anon: v.nr_inactive_anon ?? 0,
    nr_swapcached: v.nr_swapcached ?? 0,
    nr_swap_pages: v.nr_swap_pages ?? 0,
    total_swap_pages: v.total_swap_pages ?? 0,
    nr_anon_pages: v.nr_anon_pages ?? 0,
    kswapd_running: v.kswapd_running ?? 0,
    host_pages: m.host.mem.bytes / 4096,
  };
  let leaves = 0;
  let rss = 0;
  let tables = 0;
  for (const vm of m.vms) {
    const s = vm.qemu.kvm.stats;
    leaves += s.pages_4k + s.pages_2m * 512 + s.pages_1g * 512 * 512;
    tables += s.mmu_table_pages;
    rss += vm.qemu.rss().rss;
  }
  g.ept_leaves_4k = leaves;
  g.mmu_table_pages = tables;
  g.qemu_rss = rss;
  return g;
}

function translate(req: TranslateRequest): void {
  try {
    const warm = runTranslate({ ...req.opts, accesses: 3, caches: true });
    if (req.shadow) {
      const { walk, leaf } = shadowWalk(req.opts);
      post({ type: "translate", id: req.id, result: { walk, warm, shadowLeaf: leaf } });
      return;
    }
    const walk = runTranslate(req.opts);
    post({ type: "translate", id: req.id, result: { walk, warm } });
  } catch (e) {
    post({ type: "error", id: req.id, message: `translate failed: ${(e as Error).message}` });
  }
}

// quiz: the tiny run the fault-in and counter questions come from
function quiz(req: QuizRequest): void {
  try {
    post({ type: "quiz", id: req.id, run: quizRun(req.mmu) });
  } catch (e) {
    runError(req.id, e);
  }
}

ctx.onmessage = (ev) => {
  const req = ev.data;
  if (req.type === "run") run(req);
  else if (req.type === "story") story(req);
  else if (req.type === "quiz") quiz(req);
  else translate(req);
};
