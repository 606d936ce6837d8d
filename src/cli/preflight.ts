// SPDX-License-Identifier: MIT
// Everything a command checks before any work: its input files (regular, readable), the
// scenario with every trace it names read through once (format, gzip trailer, at least one
// access), and the work it plans against the bounds (output paths: output.ts). Every problem is a UsageError or a ScenarioError: exit 2.

import { readFileSync, type Stats, statSync } from "node:fs";
import { resolve } from "node:path";
import { COST_EVENTS } from "../sim/cost.js";
import { loadScenario } from "../sim/scenario_load.js";
import type { Scenario } from "../sim/scenario_schema.js";
import { estimateWork, workIssues } from "../sim/work_estimate.js";
import { AccessBatch } from "../workload/stream.js";
import { openTrace, TraceError } from "../workload/trace.js";
import { UsageError } from "./errors.js";
import { describeFsError } from "./output.js";
import { FileSource, notRegular } from "./file_source.js";

/** Reads an input file whole, refusing what is not a regular file before opening it (a FIFO would block). */
export function readInputText(path: string, what: string, fix: string): string {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${describeFsError(e)}; ${fix}`);
  }
  const kind = notRegular(st);
  if (kind !== undefined) throw new UsageError(`cannot read ${what} ${path}: it is ${kind}, not a regular file; ${fix}`);
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${describeFsError(e)}; ${fix}`);
  }
}

// ---- Traces --------------------------------------------------------------------------

interface TraceCheck {
  accesses: number;
  problem?: string;
}

/** Traces read in this process, by resolved path, size and mtime: a sweep or --compare names the same ones again. */
const traceCache = new Map<string, TraceCheck>();

/** Reads a whole trace once, storing nothing: its access count, or what is wrong with it. */
export function checkTrace(path: string): TraceCheck {
  let key: string | undefined;
  try {
    const st = statSync(path);
    key = `${resolve(path)}\0${st.size}\0${st.mtimeMs}`;
  } catch {}
  const cached = key === undefined ? undefined : traceCache.get(key);
  if (cached) return cached;
  let result: TraceCheck;
  let src: FileSource | undefined;
  try {
    src = new FileSource(path);
    const t = openTrace(src, path);
    const b = new AccessBatch(8192);
    while (t.fill(b) > 0) {}
    result =
      t.count > 0
        ? { accesses: t.count }
        : {
            accesses: 0,
            problem: `trace ${path} holds no accesses (${t.format === "mvt" ? "a memvirt header and nothing after it" : `no Lackey access lines${t.skipped > 0 ? `, ${t.skipped} log or blank lines` : ""}`}); record it again or remove the step`,
          };
  } catch (e) {
    if (e instanceof UsageError) result = { accesses: 0, problem: `${e.message}; trace paths are relative to the scenario file` };
    else if (e instanceof TraceError) {
      const msg = e.message.startsWith(path) ? e.message : `trace ${path}: ${e.message}`;
      result = { accesses: 0, problem: `${msg}; fix or record the trace again` };
    } else throw e;
  } finally {
    src?.close();
  }
  if (key !== undefined) traceCache.set(key, result);
  return result;
}

/** Every trace step's problems, at its `file` key. */
export function traceIssues(s: Scenario): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  for (const [i, vm] of s.vms.entries()) {
    for (const [j, p] of vm.processes.entries()) {
      for (const [k, st] of p.steps.entries()) {
        if (st.kind !== "trace") continue;
        const c = checkTrace(st.path);
        if (c.problem !== undefined) out.push({ path: ["vms", i, "processes", j, "steps", k, "trace", "file"], message: c.problem });
      }
    }
  }
  return out;
}

export interface CheckedLoad {
  /** Values to set by path, as --compare and sweeps do. */
  overrides?: Readonly<Record<string, unknown>>;
  /** Skip the bounds on planned work. */
  force?: boolean;
  /** Runs of this scenario the command makes (the accesses bound is on all of them). */
  runs?: number;
}

/**
 * The scenario as every command loads it: schema, cost events, then every trace read through
 * and the planned work against the bounds; a ScenarioError names each problem's file:line:col.
 */
export function loadChecked(text: string, name: string, o: CheckedLoad = {}): Scenario {
  return loadScenario(text, name, {
    costEvents: COST_EVENTS.map((e) => e.name),
    ...(o.overrides ? { overrides: o.overrides } : {}),
    check: (s) => {
      const traces = traceIssues(s);
      if (traces.length > 0) return traces;
      const est = estimateWork(s, { traceAccesses: (p) => checkTrace(p).accesses });
      return workIssues(s, est, { force: o.force === true, runs: o.runs ?? 1 });
    },
  });
}
