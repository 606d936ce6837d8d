// SPDX-License-Identifier: MIT
// Phases of a run (`- phase: name` steps): a snapshot of every counter at each boundary, and
// per phase the report of that stretch alone. A phase's record has the shape of the run's
// report: cumulative counters (kind "cumulative" in the registries) are the phase's delta, so
// the phases sum exactly to the run; gauges (kind "instant" or "peak": nr_free_pages,
// pages_4k, QEMU's rss...) are their value at the phase's end, so the last phase's value is
// the run's.

import { type CounterDesc, type CounterKind, counterList } from "../hw/counters.js";
import { HW_COUNTERS, hwCounters, sumHwCounters } from "../hw/mmu_stats.js";
import { GUEST_COUNTERS } from "../guest/stats.js";
import { HOST_COUNTERS } from "../host/vmstat.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import { applyCost, type CostResult, type CostTable } from "./cost.js";
import { costCounts, vmCostCounts } from "./cost_counts.js";
import type { Machine } from "./machine.js";
import { QEMU_FIGURES, qemuFigures } from "./report_figures.js";

/** Every counter of the machine at one instant. */
export interface CounterSnapshot {
  accesses: number;
  host: Record<string, number>;
  /** Cost-model event counts of the whole machine. */
  cost: Record<string, number>;
  /** The native twins' event counts, summed over the VMs (null when a VM has no twin). */
  native: Record<string, number> | null;
  check: { dataErrors: number; invariantViolations: number };
  vms: VmSnapshot[];
}

interface VmSnapshot {
  stats: Record<string, number>;
  vcpus: { id: number; stats: Record<string, number>; exitReasons: Record<string, number> }[];
  qemu: Record<string, number>;
  guest: Record<string, number>;
  hw: Record<string, number>;
  cost: Record<string, number>;
  native: Record<string, number> | null;
}

export function takeSnapshot(m: Machine, accesses: number): CounterSnapshot {
  const natives = m.vms.map((vm) => (vm.native ? vm.native.costCounts() : null));
  return {
    accesses,
    host: m.host.vmstat(),
    cost: costCounts(m),
    native: natives.length > 0 && natives.every((x) => x !== null) ? sumCounts(natives as Record<string, number>[]) : null,
    check: { dataErrors: m.checker.dataErrors, invariantViolations: m.checker.invariantViolations },
    vms: m.vms.map((vm, i) => {
      const kvm = vm.qemu.kvm;
      const mm = vm.qemu.mm;
      return {
        stats: kvm.statsWithVcpus(),
        vcpus: kvm.vcpus.map((v) => {
          const { exitReasons, ...stats } = v.stats;
          return { id: v.id, stats: { ...stats }, exitReasons: { ...exitReasons } };
        }),
        qemu: qemuFigures(vm.qemu.rss(), mm),
        guest: { ...vm.guest.stats },
        hw: sumHwCounters(kvm.vcpus.map((v) => hwCounters(v.mmu.stats))),
        cost: vmCostCounts(vm),
        native: natives[i]!,
      };
    }),
  };
}

function sumCounts(list: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of list) for (const [k, v] of Object.entries(c)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** The record of one phase: what `run --json` prints under `phases[]`. */
export interface PhaseReport {
  name: string;
  /** Guest accesses since the start of the run when the phase began and ended. */
  startAccesses: number;
  endAccesses: number;
  /** Cycles under the cost model since the start of the run when the phase began and ended. */
  startCycles: number;
  endCycles: number;
  host: { vmstat: Record<string, number> };
  vms: PhaseVmReport[];
  /** The phase's cycles (endCycles - startCycles) with their breakdown. */
  cost: CostResult;
  native: CostResult | null;
  overheadRatio: number | null;
  check: { dataErrors: number; invariantViolations: number };
}

export interface PhaseVmReport {
  name: string;
  stats: Record<string, number>;
  vcpus: { id: number; stats: Record<string, number>; exitReasons: Record<string, number> }[];
  qemu: { rssBytes: number; rssZeroPageBytes: number; minFlt: number; majFlt: number };
  guest: Record<string, number>;
  /** Hardware counters summed over the vCPUs, by their HwStats names. */
  hw: Record<string, number>;
  cost: CostResult;
  native: CostResult | null;
  overheadRatio: number | null;
}

function kinds(...lists: (readonly CounterDesc[])[]): ReadonlyMap<string, CounterKind> {
  return new Map(lists.flat().map((d) => [d.name, d.kind]));
}

/** Each counter group's kinds, from the declarations. */
export const PHASE_COUNTER_KINDS = {
  host: kinds(HOST_COUNTERS),
  kvm: kinds(VM_COUNTERS, VCPU_COUNTERS),
  qemu: kinds(counterList(QEMU_FIGURES)),
  guest: kinds(GUEST_COUNTERS),
  hw: kinds(HW_COUNTERS),
} as const;

/** `to` minus `from` for cumulative counters (and counters no registry describes), `to` for gauges. */
function phaseValues(
  kind: ReadonlyMap<string, CounterKind> | null,
  from: Record<string, number> | undefined,
  to: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(to)) {
    const gauge = kind !== null && (kind.get(k) ?? "cumulative") !== "cumulative";
    out[k] = gauge ? v : v - (from?.[k] ?? 0);
  }
  return out;
}

function costOf(table: CostTable, from: Record<string, number> | null | undefined, to: Record<string, number> | null): CostResult | null {
  return to === null ? null : applyCost(table, phaseValues(null, from ?? undefined, to));
}

const overhead = (c: CostResult, n: CostResult | null) => (n === null || n.cycles === 0 ? null : c.cycles / n.cycles - 1);

/** The phase `name` from `from` (null: the start of the run, every counter zero) to `to`. */
export function phaseReport(
  name: string,
  vmNames: readonly string[],
  table: CostTable,
  from: CounterSnapshot | null,
  to: CounterSnapshot,
): PhaseReport {
  const K = PHASE_COUNTER_KINDS;
  const cost = costOf(table, from?.cost, to.cost)!;
  const native = costOf(table, from?.native, to.native);
  return {
    name,
    startAccesses: from?.accesses ?? 0,
    endAccesses: to.accesses,
    startCycles: from === null ? 0 : applyCost(table, from.cost).cycles,
    endCycles: applyCost(table, to.cost).cycles,
    host: { vmstat: phaseValues(K.host, from?.host, to.host) },
    vms: to.vms.map((vm, i) => {
      const was = from?.vms[i];
      const vmCost = costOf(table, was?.cost, vm.cost)!;
      const vmNative = costOf(table, was?.native, vm.native);
      const qemu = phaseValues(K.qemu, was?.qemu, vm.qemu);
      return {
        name: vmNames[i]!,
        stats: phaseValues(K.kvm, was?.stats, vm.stats),
        vcpus: vm.vcpus.map((v, c) => ({
          id: v.id,
          stats: phaseValues(K.kvm, was?.vcpus[c]?.stats, v.stats),
          exitReasons: nonZero(phaseValues(null, was?.vcpus[c]?.exitReasons, v.exitReasons)),
        })),
        qemu: { rssBytes: qemu.rssBytes!, rssZeroPageBytes: qemu.rssZeroPageBytes!, minFlt: qemu.minFlt!, majFlt: qemu.majFlt! },
        guest: phaseValues(K.guest, was?.guest, vm.guest),
        hw: phaseValues(K.hw, was?.hw, vm.hw),
        cost: vmCost,
        native: vmNative,
        overheadRatio: overhead(vmCost, vmNative),
      };
    }),
    cost,
    native,
    overheadRatio: overhead(cost, native),
    check: {
      dataErrors: to.check.dataErrors - (from?.check.dataErrors ?? 0),
      invariantViolations: to.check.invariantViolations - (from?.check.invariantViolations ?? 0),
    },
  };
}

function nonZero(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== 0));
}
