// SPDX-License-Identifier: MIT
// `--stats`: every counter of the report on a line of its own, `name value # description`, as
// /proc/vmstat and gem5's stats.txt print them. Names are dotted paths (host.pgfault,
// vm0.kvm.pf_fixed, vm0.vcpu0.exits); the description carries the unit in brackets and
// "(memvirt)" for a counter that is not the kernel's.

import { type CounterDesc, counterMeaning } from "../hw/counters.js";
import { HW_COUNTERS } from "../hw/mmu_stats.js";
import { GUEST_COUNTERS, SELFTEST_COUNTERS } from "../guest/stats.js";
import { HOST_COUNTERS } from "../host/vmstat.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import { COST_EVENTS } from "../sim/cost.js";
import { counterList } from "../hw/counters.js";
import { HW_FIGURES, QEMU_FIGURES, VIRT_MAP_FIGURES } from "../sim/report_figures.js";
import type { Report } from "../sim/report.js";

type Line = [name: string, value: number, description: string];

function group(prefix: string, descs: readonly CounterDesc[], values: object): Line[] {
  const v = values as Record<string, unknown>;
  return descs.map((d) => [
    `${prefix}.${d.name}`,
    typeof v[d.name] === "number" ? (v[d.name] as number) : 0,
    `[${d.unit}] ${counterMeaning(d)}`,
  ]);
}

const COST_DESC = new Map(COST_EVENTS.map((e) => [e.name, e.description]));

function cost(prefix: string, c: { cycles: number; breakdown: Record<string, number>; counts: Record<string, number> }): Line[] {
  const lines: Line[] = [[`${prefix}.cycles`, c.cycles, "[cycles] (memvirt) the cost model's total"]];
  for (const [k, v] of Object.entries(c.breakdown)) {
    lines.push([`${prefix}.${k}.count`, c.counts[k] ?? 0, `[events] (memvirt) ${COST_DESC.get(k) ?? k}`]);
    lines.push([`${prefix}.${k}.cycles`, v, `[cycles] (memvirt) cycles charged to ${k}`]);
  }
  return lines;
}

/** The report's counters, one per line. */
export function statsLines(r: Report): Line[] {
  const lines: Line[] = [
    ["run.accesses", r.accesses, "[events] (memvirt) guest memory accesses made"],
    ["run.seed", r.seed, "[events] (memvirt) the run's seed"],
    ["host.ram_bytes", r.host.ramBytes, "[bytes] (memvirt) host RAM"],
    ...group("host", HOST_COUNTERS, r.host.vmstat),
  ];
  for (const vm of r.vms) {
    const p = vm.name;
    lines.push(...group(`${p}.kvm`, [...VM_COUNTERS, ...VCPU_COUNTERS], vm.stats));
    for (const v of vm.vcpus) {
      lines.push(...group(`${p}.vcpu${v.id}`, VCPU_COUNTERS, v.stats));
      for (const [reason, c] of Object.entries(v.exitReasons))
        lines.push([`${p}.vcpu${v.id}.exit_reason.${reason}`, c, `[events] VM exits with basic exit reason ${reason}`]);
    }
    lines.push(...group(`${p}.qemu`, counterList(QEMU_FIGURES), vm.qemu));
    const selftest = "virt_map_tables" in vm.guest;
    lines.push(...group(`${p}.guest`, selftest ? [...SELFTEST_COUNTERS, ...counterList(VIRT_MAP_FIGURES)] : GUEST_COUNTERS, vm.guest));
    lines.push(...group(`${p}.hw`, [...HW_COUNTERS, ...counterList(HW_FIGURES)], vm.hw));
    lines.push(...cost(`${p}.cost`, vm.cost));
    if (vm.native) lines.push(...cost(`${p}.native`, vm.native));
  }
  lines.push(...cost("cost", r.cost));
  lines.push(
    ["check.data_errors", r.check.dataErrors, "[events] (memvirt) values that did not read back as written"],
    ["check.invariant_violations", r.check.invariantViolations, "[events] (memvirt) invariant violations, stale mappings included"],
  );
  return lines;
}

/** `name value # description`, names padded to one column as in gem5's stats.txt. */
export function formatStats(r: Report): string {
  const lines = statsLines(r);
  const w = Math.max(...lines.map((l) => l[0].length));
  const vw = Math.max(...lines.map((l) => String(l[1]).length));
  return `${lines.map(([k, v, d]) => `${k.padEnd(w)} ${String(v).padStart(vw)} # ${d}`).join("\n")}\n`;
}
