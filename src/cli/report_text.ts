// SPDX-License-Identifier: MIT
// The text report of `memvirt run`: host counters, per VM the KVM, exit, QEMU, guest,
// hardware and cost figures with each counter's declared description, the checker's
// verdict, and a paragraph that tells the run's story from the numbers. A printer apart
// from the model: it reads the Report and the declarations, nothing else.

import { type CounterDesc, counterList, counterMeaning, readCounters } from "../hw/counters.js";
import { HW_COUNTERS } from "../hw/mmu_stats.js";
import { GUEST_COUNTERS, SELFTEST_COUNTERS } from "../guest/stats.js";
import { HOST_COUNTERS } from "../host/vmstat.js";
import { KSM_COUNTERS } from "../host/ksm_stats.js";
import { ZSWAP_COUNTERS } from "../host/zswap_stats.js";
import { GUEST_SWAP_COUNTERS } from "../guest/swap_stats.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import { COST_EVENTS } from "../sim/cost.js";
import { HW_FIGURES, QEMU_FIGURES, VIRT_MAP_FIGURES } from "../sim/report_figures.js";
import { exitsByReason, overheadText, summary } from "../sim/report_summary.js";
import type { Report, VmReport } from "../sim/report.js";
import type { Scenario } from "../sim/scenario_schema.js";
import { type Out, bold, dim, fitText, green, n, red, table, textWidth } from "./format.js";
import { phaseSection } from "./report_phases.js";
import { migrationSection } from "./report_migration.js";

const MiB = 2 ** 20;

/** Bytes as MiB: whole numbers plain, others with up to two decimals. */
export function mib(bytes: number): string {
  const v = bytes / MiB;
  return `${Number.isInteger(v) ? n(v) : v.toLocaleString("en-US", { maximumFractionDigits: 2 })} MiB`;
}

function pct(part: number, whole: number): string {
  if (whole === 0) return "0%";
  const p = (part / whole) * 100;
  // Never round a part up to the whole or down to nothing.
  if (part !== whole && p > 99.5) return `${Math.min(p, 99.9).toFixed(1)}%`;
  if (part !== 0 && p < 0.05) return "<0.1%";
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

function plural(v: number, one: string, many = `${one}s`): string {
  return `${n(v)} ${v === 1 ? one : many}`;
}

const QEMU_COUNTERS = counterList(QEMU_FIGURES);
const SELFTEST_GUEST_COUNTERS = [...SELFTEST_COUNTERS, ...counterList(VIRT_MAP_FIGURES)];
const GUEST_WITH_SWAP_COUNTERS = [...GUEST_COUNTERS, ...GUEST_SWAP_COUNTERS];

interface TableOpts {
  /** Counters shown even when zero. */
  always?: readonly string[];
  /** Words put before a counter's description (its share of a whole). */
  notes?: Readonly<Record<string, string>>;
  /** Rows of figures derived from the counters, after them. */
  extra?: readonly string[][];
}

function counterRows(descs: readonly CounterDesc[], values: Record<string, number>, { always = [], notes = {} }: TableOpts) {
  const rows: string[][] = [];
  let zero = 0;
  const seen = new Set<string>();
  for (const d of descs) {
    seen.add(d.name);
    const v = values[d.name] ?? 0;
    if (v === 0 && !always.includes(d.name)) {
      zero++;
      continue;
    }
    rows.push([d.name, d.unit === "bytes" ? mib(v) : n(v), `${notes[d.name] ?? ""}${counterMeaning(d)}`]);
  }
  for (const [k, v] of Object.entries(values)) {
    if (seen.has(k)) continue;
    if (v === 0) zero++;
    else rows.push([k, n(v), ""]);
  }
  return { rows, zero };
}

/** `descs`' non-zero values with their descriptions, then any other value of `values`. */
function counterTable(out: Out, descs: readonly CounterDesc[], values: Record<string, number>, opts: TableOpts = {}): string {
  const { rows, zero } = counterRows(descs, values, opts);
  rows.push(...(opts.extra ?? []));
  const lines: string[] = [];
  if (rows.length > 0) lines.push(table(out, ["counter", "value", "description"], rows, ["left", "right", "left"]));
  if (zero > 0) lines.push(dim(out, `(${plural(zero, "other counter")} ${zero === 1 ? "is" : "are"} zero; --json has them all)`));
  return lines.join("\n");
}

function section(out: Out, title: string): string {
  return `\n${bold(out, title)}`;
}

function mmuName(mmu: string): string {
  return mmu === "ept" ? "EPT" : mmu === "npt" ? "NPT" : mmu;
}

function formatVm(out: Out, vm: VmReport, cfg: Scenario["vms"][number] | undefined): string[] {
  const lines: string[] = [];
  const what = cfg
    ? `${mib(cfg.ram)} guest RAM, ${mmuName(vm.mmu)}, ${vm.backing} backing, ${plural(cfg.vcpus, "vCPU")}, ${cfg.prealloc ? "preallocated" : "lazy"}`
    : `${mmuName(vm.mmu)}, ${vm.backing} backing`;
  lines.push(section(out, `VM ${vm.name}: ${what}`));

  lines.push(bold(out, "KVM counters (VM-level, and per-vCPU ones summed over the vCPUs)"));
  lines.push(counterTable(out, [...VM_COUNTERS, ...VCPU_COUNTERS], vm.stats, { always: ["exits", "pf_fixed"] }));

  const reasons = exitsByReason(vm);
  lines.push(bold(out, "exits by reason"));
  if (reasons.length === 0) lines.push("no VM exits");
  else {
    const perCpu = vm.vcpus.length > 1;
    const rows = reasons.map((x) => [x.reason, n(x.total), x.share, ...(perCpu ? x.per.map(n) : [])]);
    const head = ["reason", "exits", "share", ...(perCpu ? vm.vcpus.map((v) => `vcpu${v.id}`) : [])];
    lines.push(table(out, head, rows, ["left", "right", "right", ...vm.vcpus.map(() => "right" as const)]));
  }

  lines.push(bold(out, "QEMU process"));
  lines.push(counterTable(out, QEMU_COUNTERS, vm.qemu, { always: Object.keys(QEMU_FIGURES) }));

  // A guest without a kernel reports its guest code's counters and the VMM's tables instead.
  const selftest = "virt_map_tables" in vm.guest;
  lines.push(bold(out, selftest ? "guest code (no kernel) and the VMM's tables" : "guest kernel"));
  // guest.swap: the guest's reclaim and swap counters join the guest kernel's.
  const guestCounters = "pswpout" in vm.guest ? GUEST_WITH_SWAP_COUNTERS : GUEST_COUNTERS;
  lines.push(counterTable(out, selftest ? SELFTEST_GUEST_COUNTERS : guestCounters, vm.guest));

  lines.push(bold(out, "hardware (summed over the vCPUs)"));
  const hw = readCounters(HW_COUNTERS, vm.hw);
  const refs = hw.guestTableReads! + hw.nestedTableReads! + hw.dataAccesses!;
  const share = (k: string) => `${pct(hw[k]!, refs)} of memory references: `;
  lines.push(
    counterTable(out, HW_COUNTERS, hw, {
      always: ["tlbHits", "tlbMisses"],
      notes: {
        guestTableReads: share("guestTableReads"),
        nestedTableReads: share("nestedTableReads"),
        dataAccesses: share("dataAccesses"),
      },
      extra: [["tableReadsPerWalk", vm.hw.tableReadsPerWalk.toFixed(2), counterMeaning(HW_FIGURES.tableReadsPerWalk)]],
    }),
  );

  lines.push(bold(out, `cost: ${n(vm.cost.cycles)} cycles${overheadText(vm.native, vm.overheadRatio)}`));
  lines.push(costTable(out, vm.cost));
  if (vm.native) {
    lines.push(`the same guest workload on bare metal (the native baseline, run in lockstep): ${n(vm.native.cycles)} cycles`);
    lines.push(costTable(out, vm.native));
  }
  return lines;
}

function costTable(out: Out, c: { cycles: number; breakdown: Record<string, number>; counts: Record<string, number> }): string {
  const desc = new Map(COST_EVENTS.map((e) => [e.name, e.description]));
  const rows = Object.entries(c.breakdown)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => [k, n(c.counts[k] ?? 0), n(v), pct(v, c.cycles), desc.get(k) ?? ""]);
  if (rows.length === 0) return "no cost";
  return table(out, ["event", "count", "cycles", "share", "description"], rows, ["left", "right", "right", "right", "left"]);
}

function sum(r: Report, f: (vm: VmReport) => number): number {
  return r.vms.reduce((a, vm) => a + f(vm), 0);
}

export { summary };

/** Greedy word wrap at `width` columns. */
export function wrap(text: string, width = 100): string {
  const out: string[] = [];
  let line = "";
  for (const w of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line === "" ? w : `${line} ${w}`;
  }
  if (line !== "") out.push(line);
  return out.join("\n");
}

export function formatReport(out: Out, r: Report, scenario?: Scenario): string {
  const lines: string[] = [];
  lines.push(
    bold(
      out,
      `memvirt run: ${r.scenario === "" ? "scenario" : r.scenario} (seed ${r.seed}): ${plural(r.accesses, "guest access", "guest accesses")}, ${n(r.cost.cycles)} cycles`,
    ),
  );

  lines.push(section(out, "host"));
  lines.push(`RAM ${mib(r.host.ramBytes)}, free at the end ${mib(r.host.freeBytes)}, swap in use ${mib(r.host.swapUsedBytes)}`);
  lines.push(counterTable(out, HOST_COUNTERS, r.host.vmstat));
  if (r.host.ksm) lines.push(...formatKsm(out, r.host.ksm));
  if (r.host.zswap) lines.push(...formatZswap(out, r.host.zswap, r.host.vmstat));

  r.vms.forEach((vm, i) => {
    lines.push(...formatVm(out, vm, scenario?.vms[i]));
  });

  const vmCycles = sum(r, (vm) => vm.cost.cycles);
  if (r.vms.length > 1 || vmCycles !== r.cost.cycles) {
    lines.push(section(out, `cost, whole run: ${n(r.cost.cycles)} cycles`));
    lines.push(costTable(out, r.cost));
    if (vmCycles !== r.cost.cycles) lines.push(dim(out, "(swap-out is host work, not charged to a VM)"));
  }

  lines.push(...phaseSection(out, r));
  lines.push(...migrationSection(out, r, section)); // live migration

  lines.push(section(out, "check"));
  const c = r.check;
  if (c.dataErrors === 0 && c.invariantViolations === 0) {
    const ok = "OK: every value read back as written; no stale mapping";
    lines.push(green(out, ok));
  } else {
    const bad = `FAILED: ${plural(c.dataErrors, "data error")}, ${plural(c.invariantViolations, "invariant violation")}`;
    lines.push(red(out, bad));
    const shown = c.messages.slice(0, 20);
    for (const m of shown) lines.push(`  ${m}`);
    if (c.messages.length > shown.length) lines.push(dim(out, `  (${n(c.messages.length - shown.length)} more in --json)`));
  }

  lines.push(section(out, "summary"));
  lines.push(wrap(summary(r, scenario), textWidth(out)));
  return `${fitText(out, lines.join("\n"))}\n`;
}

/** host.zswap: where swapped-out pages went (pool, zeromap, device) and the counters. */
function formatZswap(out: Out, z: Record<string, number>, vmstat: Record<string, number>): string[] {
  const stored = z.stored_pages ?? 0;
  const pool = z.pool_total_size ?? 0;
  return [
    section(out, "zswap"),
    `${n(stored)} pages (${mib(stored * 4096)}) held compressed in ${mib(pool)} of RAM; swap-outs: ${n(z.zswpout ?? 0)} to zswap, ${n(z.swpout_zero ?? 0)} zero pages to the zeromap, ${n(vmstat.pswpout ?? 0)} to the device (${n(z.written_back_pages ?? 0)} written back); swap-ins: ${n(z.zswpin ?? 0)} zswap hits, ${n(z.swpin_zero ?? 0)} zero, ${n(vmstat.pswpin ?? 0)} device reads`,
    counterTable(out, ZSWAP_COUNTERS, z),
  ];
}

/** host.ksm: the /sys/kernel/mm/ksm counters and the memory they save (pages_sharing + ksm_zero_pages pages). */
function formatKsm(out: Out, ksm: Record<string, number>): string[] {
  const saved = ((ksm.pages_sharing ?? 0) + (ksm.ksm_zero_pages ?? 0)) * 4096;
  return [
    section(out, "ksm"),
    `KSM saves ${mib(saved)}: ${ksm.pages_shared ?? 0} KSM pages shared by ${ksm.pages_sharing ?? 0} more page slots, ${ksm.ksm_zero_pages ?? 0} pages merged with the zero page`,
    counterTable(out, KSM_COUNTERS, ksm),
  ];
}

// ---- guest reclaim and swap (guest.swap) ----------------------------------------------------
