// SPDX-License-Identifier: MIT
// `--kvm-stat`: the exits by reason in the shape of `perf kvm stat report` (tools/perf/
// builtin-kvm.c, print_result(): VM-EXIT, Samples, Samples%, Time%, Min, Max and Avg time,
// then "Total Samples:..., Total events handled time:..."). perf times each exit from
// kvm_exit to kvm_entry; the model has no clock, so the time of an exit is priced by the cost
// model in cycles: every exit costs vm_exit, and a fault exit (EPT_VIOLATION, NPF, the #PF of
// shadow paging) also kvm_page_fault, the host faults and swap-ins QEMU's mm took under it,
// the emulated page-table writes and the guest PTE accesses of shadow paging. Simplification:
// the fault exits share those costs in proportion to their counts, and Min/Max are the
// cheapest and dearest paths those counts show (not per-exit measurements).

import type { VmReport } from "../sim/report.js";

const FAULT_REASONS = new Set(["EPT_VIOLATION", "NPF", "EXCEPTION_NMI"]);

export interface ExitStatRow {
  reason: string;
  samples: number;
  cycles: number;
  min: number;
  max: number;
}

/** One VM's exits by reason, each priced by the cost model; sorted by samples, as perf sorts by default. */
export function exitStatRows(vm: VmReport): ExitStatRow[] {
  const per = (k: string) => {
    const n = vm.cost.counts[k] ?? 0;
    return n === 0 ? 0 : (vm.cost.breakdown[k] ?? 0) / n;
  };
  const byReason = new Map<string, number>();
  for (const v of vm.vcpus) for (const [r, c] of Object.entries(v.exitReasons)) byReason.set(r, (byReason.get(r) ?? 0) + c);
  const faultExits = [...byReason].filter(([r]) => FAULT_REASONS.has(r)).reduce((a, [, c]) => a + c, 0);
  const c = vm.cost.counts;
  // What the fault exits did beyond the exit itself (cost_counts.ts counts them on the vCPUs and QEMU's mm).
  const under = ["kvm_page_fault", "host_fault", "swap_in", "emulate", "gpte_access"].reduce((a, k) => a + (vm.cost.breakdown[k] ?? 0), 0);
  const exit = per("vm_exit");
  const cheapest = exit + per("kvm_page_fault") + ((c.host_fault ?? 0) >= (c.kvm_page_fault ?? 0) ? per("host_fault") : 0);
  const dearest =
    exit +
    per("kvm_page_fault") +
    per("host_fault") +
    ((c.swap_in ?? 0) > 0 ? per("swap_in") : 0) +
    ((c.emulate ?? 0) > 0 ? per("emulate") : 0);
  return [...byReason]
    .map(([reason, samples]) =>
      FAULT_REASONS.has(reason)
        ? { reason, samples, cycles: samples * exit + (under * samples) / faultExits, min: cheapest, max: dearest }
        : { reason, samples, cycles: samples * exit, min: exit, max: exit },
    )
    .sort((a, b) => b.samples - a.samples || a.reason.localeCompare(b.reason));
}

const f2 = (v: number) => v.toFixed(2);

/** perf's layout: fixed-width columns, right-aligned, the reason padded to 20. */
export function formatExitStat(vm: VmReport): string {
  const rows = exitStatRows(vm);
  const samples = rows.reduce((a, r) => a + r.samples, 0);
  const cycles = rows.reduce((a, r) => a + r.cycles, 0);
  const w = Math.max(20, ...rows.map((r) => r.reason.length));
  const head = `${"VM-EXIT".padStart(w)} ${"Samples".padStart(10)} ${"Samples%".padStart(9)} ${"Time%".padStart(9)} ${"Min cycles".padStart(12)} ${"Max cycles".padStart(12)} ${"Avg cycles".padStart(12)}`;
  const lines = [`Analyze events for VM ${vm.name}, all VCPUs (time in cycles of the cost model):`, "", head, ""];
  for (const r of rows) {
    lines.push(
      `${r.reason.padStart(w)} ${String(r.samples).padStart(10)} ${`${f2((r.samples / samples) * 100)}%`.padStart(9)} ${`${f2(cycles === 0 ? 0 : (r.cycles / cycles) * 100)}%`.padStart(9)} ${f2(r.min).padStart(12)} ${f2(r.max).padStart(12)} ${f2(r.cycles / r.samples).padStart(12)}`,
    );
  }
  lines.push("", `Total Samples:${samples}, Total events handled time:${f2(cycles)} cycles.`, "");
  return lines.join("\n");
}
