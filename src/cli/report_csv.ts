// SPDX-License-Identifier: MIT
// Reports as CSV (csv-stringify): one row per VM of each run, with the run's label, the
// KVM counters, QEMU's RSS, hardware counters, host counters and cycles. A run whose scenario
// marks phases also has one row per phase and VM after those, with the phase's name in the
// last column (empty on the whole-run rows): cumulative counters are the phase's counts,
// gauges (pages_4k, rssBytes...) their value at the phase's end.
// Column names are the value's JSON path with `.` separators and the JSON's key spelling
// (`vms.qemu.rssBytes`, `host.vmstat.pgfault`); the row's element of an array is left out
// (its VM is `vms.name`). docs/report.md lists them.

import { stringify } from "csv-stringify/sync";
import type { PhaseReport } from "../sim/phases.js";
import type { Report } from "../sim/report.js";
import type { HW_STATS } from "../hw/mmu_stats.js";
import type { HOST_VM_EVENT_STATS } from "../host/vmstat.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import type { QEMU_FIGURES } from "../sim/report_figures.js";
import { MIGRATION_CSV_COLUMNS, migrationCsvRows } from "./report_migration.js";

/** Declared names, so a column cannot name a counter that does not exist. */
const QEMU_KEYS: readonly (keyof typeof QEMU_FIGURES)[] = ["rssBytes", "rssZeroPageBytes"];
const HW_KEYS: readonly (keyof typeof HW_STATS)[] = [
  "tlbHits",
  "tlbMisses",
  "walks",
  "guestTableReads",
  "nestedTableReads",
  "dataAccesses",
];
const HOST_KEYS: readonly (keyof typeof HOST_VM_EVENT_STATS)[] = [
  "pgfault",
  "pgmajfault",
  "pswpin",
  "pswpout",
  "pgscan_kswapd",
  "pgscan_direct",
  "pgsteal_kswapd",
  "pgsteal_direct",
  "oom_kill",
];

export function csvColumns(): string[] {
  return [
    "label",
    "scenario",
    "seed",
    "vms.name",
    "vms.mmu",
    "vms.backing",
    "accesses",
    ...VM_COUNTERS.map((c) => `vms.stats.${c.name}`),
    ...VCPU_COUNTERS.map((c) => `vms.stats.${c.name}`),
    ...QEMU_KEYS.map((k) => `vms.qemu.${k}`),
    ...HW_KEYS.map((k) => `vms.hw.${k}`),
    ...HOST_KEYS.map((k) => `host.vmstat.${k}`),
    "vms.cost.cycles",
    "vms.native.cycles",
    "vms.overheadRatio",
    "cost.cycles",
    "check.dataErrors",
    "check.invariantViolations",
    "phases.name",
  ];
}

export function csvRows(label: string, r: Report): (string | number)[][] {
  return [...runRows(label, r), ...(r.phases ?? []).flatMap((p) => phaseRows(label, r, p))];
}

function runRows(label: string, r: Report): (string | number)[][] {
  return r.vms.map((vm) => [
    label,
    r.scenario,
    r.seed,
    vm.name,
    vm.mmu,
    vm.backing,
    r.accesses,
    ...VM_COUNTERS.map((c) => vm.stats[c.name] ?? 0),
    ...VCPU_COUNTERS.map((c) => vm.stats[c.name] ?? 0),
    ...QEMU_KEYS.map((k) => vm.qemu[k]),
    ...HW_KEYS.map((k) => vm.hw[k] ?? 0),
    ...HOST_KEYS.map((k) => r.host.vmstat[k] ?? 0),
    vm.cost.cycles,
    vm.native?.cycles ?? "",
    vm.overheadRatio ?? "",
    r.cost.cycles,
    r.check.dataErrors,
    r.check.invariantViolations,
    "",
  ]);
}

function phaseRows(label: string, r: Report, p: PhaseReport): (string | number)[][] {
  return p.vms.map((vm, i) => [
    label,
    r.scenario,
    r.seed,
    vm.name,
    r.vms[i]!.mmu,
    r.vms[i]!.backing,
    p.endAccesses - p.startAccesses,
    ...VM_COUNTERS.map((c) => vm.stats[c.name] ?? 0),
    ...VCPU_COUNTERS.map((c) => vm.stats[c.name] ?? 0),
    ...QEMU_KEYS.map((k) => vm.qemu[k]),
    ...HW_KEYS.map((k) => vm.hw[k] ?? 0),
    ...HOST_KEYS.map((k) => p.host.vmstat[k] ?? 0),
    vm.cost.cycles,
    vm.native?.cycles ?? "",
    vm.overheadRatio ?? "",
    p.cost.cycles,
    p.check.dataErrors,
    p.check.invariantViolations,
    p.name,
  ]);
}

export function reportCsv(runs: { label: string; report: Report }[]): string {
  // Live migration: its columns after the standard ones, and its rows after each run's, only when a run migrated.
  if (runs.some((x) => x.report.migrations !== undefined)) {
    const cols = csvColumns();
    const pad = (row: (string | number)[]) => [...row, ...MIGRATION_CSV_COLUMNS.map(() => "")];
    return stringify([
      [...cols, ...MIGRATION_CSV_COLUMNS],
      ...runs.flatMap((x) => [...csvRows(x.label, x.report).map(pad), ...migrationCsvRows(x.label, x.report, cols.length)]),
    ]);
  }
  return stringify([csvColumns(), ...runs.flatMap((x) => csvRows(x.label, x.report))]);
}
