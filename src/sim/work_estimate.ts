// SPDX-License-Identifier: MIT
// How much work a validated scenario plans (accesses, VMs, memory the model will hold), and
// the problems to refuse it with before it starts when that is beyond sane bounds and
// neither --force nor the scenario's `limits:` says so. The constants are in scenario_limits.ts.

import { PAGE_SIZE } from "../hw/addr.js";
import {
  ACCESSES_PER_SECOND,
  BASE_BYTES,
  BYTES_PER_GUEST_PAGE,
  BYTES_PER_TOUCHED_PAGE,
  BYTES_PER_VM,
  WORK_LIMITS,
} from "./scenario_limits.js";
import type { Scenario, Step } from "./scenario_schema.js";
import { formatSize } from "./size.js";

export interface WorkEstimate {
  /** Guest accesses of one run (a churn round that writes nothing counts as one). */
  accesses: number;
  vms: number;
  guestRam: number;
  /** Guest pages the run will touch, at most (prealloc touches all of a VM's RAM). */
  touchedPages: number;
  /** Bytes of memory the model is estimated to hold at its peak. */
  memory: number;
  /** The step with the most accesses, for pointing at it. */
  biggest: { path: (string | number)[]; accesses: number } | null;
}

export interface WorkOptions {
  /** Accesses of the trace at a resolved path (traces are counted by the CLI, which can read them). */
  traceAccesses?: (path: string) => number;
  /** Runs of the same scenario the command makes (compare variants, sweep points, check schedules). */
  runs?: number;
}

const pages = (bytes: number) => Math.ceil(bytes / PAGE_SIZE);

function stepAccesses(st: Step, o: WorkOptions): number {
  switch (st.kind) {
    case "touch":
      return pages(st.size);
    case "random":
    case "sequential":
    case "zipf":
    case "pointerChase":
    case "phases":
      return st.accesses;
    case "mmapChurn":
      return st.iterations * Math.max(1, st.touch ?? pages(st.size));
    case "processChurn":
      return st.count * Math.max(1, pages(st.size));
    case "trace":
      return o.traceAccesses?.(st.path) ?? 0;
    case "exit":
      return st.count;
    default:
      return 0;
  }
}

/** Bytes of guest memory a step maps or touches on its own (not through a named region). */
function stepFootprint(st: Step): number {
  switch (st.kind) {
    case "mmap":
    case "mmapFile":
    case "mmapChurn":
    case "processChurn":
      return st.size;
    case "touch":
    case "random":
    case "sequential":
    case "zipf":
    case "pointerChase":
    case "phases":
      return st.name === undefined ? st.size : 0;
    default:
      return 0;
  }
}

export function estimateWork(s: Scenario, o: WorkOptions = {}): WorkEstimate {
  let accesses = 0;
  let guestRam = 0;
  let touchedPages = 0;
  let biggest: WorkEstimate["biggest"] = null;
  s.vms.forEach((vm, i) => {
    guestRam += vm.ram;
    let footprint = 0;
    vm.processes.forEach((p, j) => {
      p.steps.forEach((st, k) => {
        const a = stepAccesses(st, o);
        accesses += a;
        if (a > 0 && (biggest === null || a > biggest.accesses))
          biggest = { path: ["vms", i, "processes", j, "steps", k, st.kind], accesses: a };
        footprint += stepFootprint(st);
      });
    });
    for (const space of vm.guest.spaces ?? []) for (const r of space.regions) footprint += r.size;
    touchedPages += Math.min(pages(vm.ram), vm.prealloc ? pages(vm.ram) : pages(footprint));
  });
  const memory = BASE_BYTES + s.vms.length * BYTES_PER_VM + pages(guestRam) * BYTES_PER_GUEST_PAGE + touchedPages * BYTES_PER_TOUCHED_PAGE;
  return { accesses, vms: s.vms.length, guestRam, touchedPages, memory, biggest };
}

/** A count for a message: 1,000,000 up to 10^15, then 9.01e+15. */
export function bigCount(n: number): string {
  return n < 1e15 ? Math.round(n).toLocaleString("en-US") : n.toExponential(2);
}

/** Seconds as "about 3 minutes", "about 5 hours", "about 2,000 years". */
export function duration(seconds: number): string {
  const units: [string, number][] = [
    ["year", 365 * 86400],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [name, secs] of units) {
    if (seconds >= 2 * secs) return `about ${bigCount(seconds / secs)} ${name}s`;
  }
  return `about ${Math.max(1, Math.round(seconds))} seconds`;
}

/** A size for a message, rounded: "4.5 GiB", "80 TiB". */
function approxSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** Round up to a whole count of the unit, for a `limits:` value the user can paste. */
function limitSize(bytes: number): string {
  const up = Math.ceil(bytes / 2 ** 30) * 2 ** 30;
  return Number.isSafeInteger(up) ? formatSize(up) : "N";
}

/**
 * Problems with the planned work, each at the key to blame; none with `force`. Bounds are
 * WORK_LIMITS, or the scenario's `limits:` where it gives one.
 */
export function workIssues(
  s: Scenario,
  est: WorkEstimate,
  o: WorkOptions & { force?: boolean } = {},
): { path: (string | number)[]; message: string }[] {
  if (o.force) return [];
  const out: { path: (string | number)[]; message: string }[] = [];
  const runs = Math.max(1, o.runs ?? 1);
  const limits = { ...WORK_LIMITS, ...stripUndefined(s.limits ?? {}) };
  const total = est.accesses * runs;
  if (total > limits.accesses) {
    const each = runs > 1 ? ` (${runs} runs of ${bigCount(est.accesses)})` : "";
    const exact = Math.ceil(total).toLocaleString("en-US", { useGrouping: true, maximumFractionDigits: 0 }).replaceAll(",", "_");
    const raise = Number.isSafeInteger(Math.ceil(total)) ? `, or set limits: {accesses: ${exact}}` : "";
    out.push({
      path: est.biggest?.path ?? ["vms"],
      message: `the run plans ${bigCount(total)} guest accesses${each}, ${duration(total / ACCESSES_PER_SECOND)} at ~${bigCount(ACCESSES_PER_SECOND)} accesses/s; at most ${bigCount(limits.accesses)} without --force: fewer accesses or iterations, or pass --force${raise}`,
    });
  }
  if (est.vms > limits.vms) {
    out.push({
      path: ["vms"],
      message: `${est.vms} VMs; at most ${limits.vms} without --force (each VM costs time and memory before the first access): fewer VMs, or pass --force, or set limits: {vms: ${est.vms}}`,
    });
  }
  if (est.memory > limits.memory) {
    let vm = 0;
    s.vms.forEach((v, i) => {
      if (v.ram > s.vms[vm]!.ram) vm = i;
    });
    out.push({
      path: ["vms", vm, "ram"],
      message: `the model would need about ${approxSize(est.memory)} of memory (${est.vms} VM${est.vms === 1 ? "" : "s"}, ${approxSize(est.guestRam)} of guest RAM, ${approxSize(est.touchedPages * PAGE_SIZE)} of it touched); at most ${approxSize(limits.memory)} without --force: smaller guests or regions, or pass --force, or set limits: {memory: ${limitSize(est.memory)}}`,
    });
  }
  return out;
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
