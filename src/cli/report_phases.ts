// SPDX-License-Identifier: MIT
// The phase table of the text report: one column per phase (`- phase: name` steps, after
// "start", the stretch before the first boundary) and one for the whole run, one row per
// counter that changed in some phase. Cumulative counters show the phase's count, so a row's
// phases add up to its whole-run figure; gauges (marked "(end)") their value at the phase's end.

import type { CounterKind } from "../hw/counters.js";
import { PHASE_COUNTER_KINDS, type PhaseReport } from "../sim/phases.js";
import type { Report } from "../sim/report.js";
import { type Out, bold, dim, n, table } from "./format.js";

/** Bytes as MiB, as the rest of the text report shows them (report_text.ts imports this file, so not from there). */
function mib(bytes: number): string {
  const v = bytes / 2 ** 20;
  return `${Number.isInteger(v) ? n(v) : v.toLocaleString("en-US", { maximumFractionDigits: 2 })} MiB`;
}

interface Row {
  label: string;
  gauge: boolean;
  phases: number[];
  whole: number;
  show?: (v: number) => string;
}

/** Rows for one counter group: every key any phase has, in the phases' key order. */
function groupRows(
  prefix: string,
  kinds: ReadonlyMap<string, CounterKind>,
  phases: readonly Record<string, number>[],
  whole: Record<string, number>,
): Row[] {
  const keys = new Set<string>();
  for (const p of phases) for (const k of Object.keys(p)) keys.add(k);
  return [...keys].map((k) => ({
    label: `${prefix}${k}`,
    gauge: (kinds.get(k) ?? "cumulative") !== "cumulative",
    phases: phases.map((p) => p[k] ?? 0),
    whole: whole[k] ?? 0,
  }));
}

/** A cumulative row changed when some phase counted something; a gauge when it moved at some boundary (from 0 before the run). */
function changed(r: Row): boolean {
  if (!r.gauge) return r.phases.some((v) => v !== 0);
  return r.phases.some((v, i) => v !== (i === 0 ? 0 : r.phases[i - 1]));
}

function rows(r: Report, phases: readonly PhaseReport[]): Row[] {
  const K = PHASE_COUNTER_KINDS;
  const out: Row[] = [
    { label: "accesses", gauge: false, phases: phases.map((p) => p.endAccesses - p.startAccesses), whole: r.accesses },
    { label: "cycles", gauge: false, phases: phases.map((p) => p.cost.cycles), whole: r.cost.cycles },
  ];
  if (r.native !== null && phases.every((p) => p.native !== null)) {
    out.push({ label: "native cycles", gauge: false, phases: phases.map((p) => p.native!.cycles), whole: r.native.cycles });
  }
  out.push(
    ...groupRows(
      "host.",
      K.host,
      phases.map((p) => p.host.vmstat),
      r.host.vmstat,
    ).filter(changed),
  );
  r.vms.forEach((vm, i) => {
    const at = (p: PhaseReport) => p.vms[i]!;
    const hwWhole = vm.hw as unknown as Record<string, number>;
    const group: Row[] = [
      { label: `${vm.name}.cycles`, gauge: false, phases: phases.map((p) => at(p).cost.cycles), whole: vm.cost.cycles },
      ...groupRows(
        `${vm.name}.`,
        K.kvm,
        phases.map((p) => at(p).stats),
        vm.stats,
      ),
      ...groupRows(
        `${vm.name}.qemu.`,
        K.qemu,
        phases.map((p) => at(p).qemu),
        vm.qemu,
      ).map((row) => (row.label.endsWith(".rssBytes") || row.label.endsWith(".rssZeroPageBytes") ? { ...row, show: mib } : row)),
      ...groupRows(
        `${vm.name}.guest.`,
        K.guest,
        phases.map((p) => at(p).guest),
        vm.guest,
      ),
      ...groupRows(
        `${vm.name}.hw.`,
        K.hw,
        phases.map((p) => at(p).hw),
        hwWhole,
      ),
    ];
    out.push(...group.filter(changed));
  });
  const errors = phases.map((p) => p.check.dataErrors + p.check.invariantViolations);
  if (errors.some((e) => e > 0)) {
    out.push({
      label: "check: errors",
      gauge: false,
      phases: errors,
      whole: r.check.dataErrors + r.check.invariantViolations,
    });
  }
  return out;
}

/** The section, or [] when the run has no phases. */
export function phaseSection(out: Out, r: Report): string[] {
  const phases = r.phases;
  if (phases === undefined || phases.length === 0) return [];
  const body = rows(r, phases).map((row) => {
    const show = row.show ?? n;
    return [row.gauge ? `${row.label} (end)` : row.label, ...row.phases.map(show), show(row.whole)];
  });
  return [
    `\n${bold(out, `phases: ${phases.map((p) => p.name).join(", ")}`)}`,
    table(out, ["counter", ...phases.map((p) => p.name), "whole run"], body, ["left", ...phases.map(() => "right" as const), "right"]),
    dim(
      out,
      "(each phase's count, so a row's phases add up to the whole run; (end): a gauge's value when the phase ended; --json has every counter under phases[])",
    ),
  ];
}
