// SPDX-License-Identifier: MIT
// The text report of `memvirt run`: host counters, per VM the KVM, exit, QEMU, guest,
// hardware and cost figures with each counter's declared description, the checker's
// verdict, and a paragraph that tells the run's story from the numbers. A printer apart
// from the model: it reads the Report and the declarations, nothing else.

import pc from "picocolors";
import { type CounterDesc, counterList, counterMeaning, readCounters } from "../hw/counters.js";
import { HW_COUNTERS } from "../hw/mmu_stats.js";
import { GUEST_COUNTERS, SELFTEST_COUNTERS } from "../guest/stats.js";
import { HOST_COUNTERS } from "../host/vmstat.js";
import { KSM_COUNTERS } from "../host/ksm_stats.js";
import { GUEST_SWAP_COUNTERS } from "../guest/swap_stats.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import { COST_EVENTS } from "../sim/cost.js";
import { HW_FIGURES, QEMU_FIGURES, VIRT_MAP_FIGURES } from "../sim/report_figures.js";
import type { Report, VmReport } from "../sim/report.js";
import type { Scenario } from "../sim/scenario_schema.js";
import { type Out, bold, dim, n, table } from "./format.js";
import { phaseSection } from "./report_phases.js";

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

  const reasons = new Map<string, number[]>();
  vm.vcpus.forEach((v, i) => {
    for (const [reason, c] of Object.entries(v.exitReasons)) {
      const row = reasons.get(reason) ?? vm.vcpus.map(() => 0);
      row[i] = c;
      reasons.set(reason, row);
    }
  });
  const totalExits = vm.stats.exits ?? 0;
  lines.push(bold(out, "exits by reason"));
  if (reasons.size === 0) lines.push("no VM exits");
  else {
    const perCpu = vm.vcpus.length > 1;
    const rows = [...reasons.entries()]
      .map(([reason, per]) => ({ reason, per, total: per.reduce((a, b) => a + b, 0) }))
      .sort((a, b) => b.total - a.total)
      .map((x) => [x.reason, n(x.total), pct(x.total, totalExits), ...(perCpu ? x.per.map(n) : [])]);
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

  lines.push(bold(out, `cost: ${n(vm.cost.cycles)} cycles${overheadText(vm.native, vm.overhead)}`));
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

function overheadText(native: { cycles: number } | null, overhead: number | null): string {
  if (native === null || overhead === null) return "";
  return `; natively ${n(native.cycles)}, so virtualization added ${(overhead * 100).toFixed(overhead < 0.1 ? 1 : 0)}%`;
}

const COST_PHRASE = new Map(COST_EVENTS.map((e) => [e.name, e.phrase]));

function sum(r: Report, f: (vm: VmReport) => number): number {
  return r.vms.reduce((a, vm) => a + f(vm), 0);
}

/** The run's story in one paragraph, every figure taken from the report. */
export function summary(r: Report, scenario?: Scenario): string {
  const s: string[] = [];
  const v = r.host.vmstat;
  const one = r.vms.length === 1;
  const guest = one ? "the guest" : `the ${r.vms.length} guests`;
  const stat = (k: string) => sum(r, (vm) => vm.stats[k] ?? 0);
  const mmus = [...new Set(r.vms.map((vm) => vm.mmu))];
  const violation = mmus.length === 1 && mmus[0] === "npt" ? "a nested page fault (NPF)" : "an EPT violation";

  // Allocation: lazy or preallocated.
  const cfgs = scenario?.vms ?? [];
  const ram = cfgs.reduce((a, c) => a + c.ram, 0);
  const rss = sum(r, (vm) => vm.qemu.rss);
  const peak = Math.max(rss, ...r.series.map((p) => p.rss));
  const peakText = peak > rss ? ` (it peaked at ${mib(peak)})` : "";
  if (cfgs.length > 0 && cfgs.every((c) => c.prealloc)) {
    s.push(`QEMU preallocated all ${mib(ram)} of guest RAM at start; its RSS ended at ${mib(rss)}${peakText}.`);
  } else if (cfgs.length > 0) {
    s.push(
      `QEMU reserved ${mib(ram)} of guest RAM${cfgs.some((c) => c.prealloc) ? "" : " but allocated nothing up front"}; its RSS ended at ${mib(rss)}${peakText}.`,
    );
  }

  // First touches: guest fault, exit, host fault.
  const guestAlloc = sum(r, (vm) => vm.guest.pgalloc ?? 0);
  const guestFaults = sum(r, (vm) => vm.guest.pgfault ?? 0);
  const pfTaken = stat("pf_taken");
  const pfFixed = stat("pf_fixed");
  const minFlt = sum(r, (vm) => vm.qemu.minFlt);
  const majFlt = sum(r, (vm) => vm.qemu.majFlt);
  const noKernel = cfgs.length > 0 && cfgs.every((c) => c.guest.kernel === "none");
  let touch = noKernel
    ? `The ${one ? "guest has" : "guests have"} no kernel: like a KVM selftest, the VMM wrote ${plural(
        sum(r, (vm) => vm.guest.virt_map_tables ?? 0),
        "page-table page",
      )} (${n(sum(r, (vm) => vm.guest.virt_map_entries ?? 0))} entries) into guest RAM before the run, and the guest code made ${plural(r.accesses, "access", "accesses")}.`
    : `The ${one ? "guest" : "guests'"} processes made ${plural(r.accesses, "access", "accesses")}; ${guest} allocated ${plural(guestAlloc, "page")} (data and page tables) on ${plural(guestFaults, "guest page fault")}.`;
  const backings = new Set(r.vms.map((vm) => vm.backing));
  const unit =
    backings.size === 1 && backings.has("hugetlb-2m")
      ? "2 MiB piece of guest RAM (one hugetlb page)"
      : backings.size === 1 && backings.has("hugetlb-1g")
        ? "1 GiB piece of guest RAM (one hugetlb page)"
        : "guest-physical page";
  const preallocated = cfgs.length > 0 && cfgs.every((c) => c.prealloc);
  const hostFaults = `${n(minFlt + majFlt)} times (${n(minFlt)} minor, ${n(majFlt)} major; host pgfault ${n(v.pgfault ?? 0)})`;
  if (pfTaken > 0 && preallocated) {
    touch += ` Each first touch of a ${unit} took ${violation}, but the host page was already there: KVM handled ${plural(pfTaken, "fault")} and fixed ${n(pfFixed)} (pf_fixed) without a host fault; the host faulted in QEMU's pages ${hostFaults}, at start.`;
  } else if (pfTaken > 0 && mmus.length === 1 && mmus[0] === "shadow") {
    const pfGuest = stat("pf_guest");
    const emulated = stat("pf_emulate");
    const how = noKernel
      ? "Under shadow paging each first touch exits: KVM walked the guest's tables in software and"
      : `Under shadow paging every guest page fault exits: KVM walked the guest's tables in software, reflected ${plural(pfGuest, "fault")} that were the guest's own (pf_guest),`;
    touch += ` ${how} built shadow entries on ${n(pfFixed)} (pf_fixed)${emulated > 0 ? ` and emulated ${plural(emulated, "write")} to write-protected guest page tables (pf_emulate; mmu_pte_write ${n(stat("mmu_pte_write"))})` : ""}; ${plural(stat("exits"), "exit")} in all, and the host faulted in QEMU's pages ${hostFaults}.`;
  } else if (pfTaken > 0) {
    touch += ` Each first touch of a ${unit} took ${violation} and a host fault: KVM handled ${plural(pfTaken, "fault")} and fixed ${n(pfFixed)} (pf_fixed), and the host faulted in QEMU's pages ${hostFaults}.`;
  } else {
    touch += " No access needed KVM's fault handler.";
  }
  s.push(touch);

  // Translation cost: huge pages and table reads per walk.
  const walks = sum(r, (vm) => vm.hw.walks);
  const reads = sum(r, (vm) => vm.hw.references.guestTable + vm.hw.references.nestedTable);
  const misses = sum(r, (vm) => vm.hw.tlbMisses);
  const lookups = misses + sum(r, (vm) => vm.hw.tlbHits);
  const p2m = stat("pages_2m");
  const p1g = stat("pages_1g");
  const perWalk = walks === 0 ? "0" : (reads / walks).toFixed(1);
  if (p2m + p1g > 0) {
    const p4k = stat("pages_4k");
    const leaves = [
      p1g > 0 ? `${plural(p1g, "leaf", "leaves")} of 1 GiB (pages_1g)` : "",
      p2m > 0 ? `${plural(p2m, "leaf", "leaves")} of 2 MiB (pages_2m)` : "",
      p4k > 0 ? `${plural(p4k, "leaf", "leaves")} of 4 KiB (pages_4k)` : "",
    ].filter((x) => x !== "");
    s.push(
      `KVM mapped guest RAM with ${leaves.join(" and ")}, so a TLB miss (${pct(misses, lookups)} of translations) cost ${perWalk} table reads on average.`,
    );
  } else if (walks > 0) {
    s.push(`${pct(misses, lookups)} of translations missed the TLB; a walk cost ${perWalk} table reads on average.`);
  }

  // Pressure, reclaim, notifier, swap.
  const scanK = v.pgscan_kswapd ?? 0;
  const scanD = v.pgscan_direct ?? 0;
  const pswpout = v.pswpout ?? 0;
  const pswpin = v.pswpin ?? 0;
  if (scanK + scanD > 0) {
    let p = `The host ran short of memory: kswapd scanned ${plural(scanK, "page")} and reclaimed ${n(v.pgsteal_kswapd ?? 0)}`;
    if (scanD > 0)
      p += `, and ${plural(v.allocstall_normal ?? 0, "allocation")} stalled in direct reclaim (${n(scanD)} scanned, ${n(v.pgsteal_direct ?? 0)} reclaimed)`;
    p += ".";
    if (pswpout > 0) {
      p += ` ${plural(pswpout, "page")} went to swap (pswpout) and ${n(pswpin)} came back (pswpin) when ${guest} touched them again;`;
      p += ` KVM dropped its entry for each reclaimed page through the mmu_notifier (${plural(stat("remote_tlb_flush_requests"), "remote TLB flush request")})`;
      const retries = stat("mmu_fault_retries");
      if (retries > 0)
        p += `, and ${plural(retries, "fault")} retried because an invalidation ran while ${retries === 1 ? "it was" : "they were"} in flight`;
      p += ".";
    }
    s.push(p);
  } else if (pswpout === 0) {
    s.push("The host never ran short of memory: no reclaim, no swap.");
  }
  // Guest RAM handed back by a timeline madvise (a balloon): other frees are KVM's and QEMU's own.
  const freedOutside = (v.pgfree ?? 0) - (v.pgsteal_kswapd ?? 0) - (v.pgsteal_direct ?? 0);
  if (freedOutside > 0 && (scenario?.timeline.length ?? 0) > 0) {
    s.push(
      `${plural(freedOutside, "page")} went back to the host outside reclaim (madvise, munmap or exit); the mmu_notifier made KVM zap their entries first (${plural(stat("remote_tlb_flush_requests"), "remote TLB flush request")} in all).`,
    );
  }
  // virtio-balloon and free page reporting: what QEMU discarded for the guest's driver.
  const balloons = r.vms.filter((vm) => vm.balloon !== undefined);
  if (balloons.length > 0) {
    const b = (f: (x: NonNullable<VmReport["balloon"]>) => number) => balloons.reduce((t, vm) => t + f(vm.balloon!), 0);
    const runs = sum(r, (vm) => vm.guest.page_reporting_runs ?? 0);
    const parts: string[] = [];
    const inflated = b((x) => x.inflatedPages);
    if (inflated > 0)
      parts.push(
        `the balloon took ${plural(inflated, "page")} from ${guest} and gave ${n(b((x) => x.deflatedPages))} back (balloon_inflate, balloon_deflate)`,
      );
    if (runs > 0)
      parts.push(
        `free page reporting ran ${plural(runs, "time")} and reported ${plural(
          b((x) => x.reportedPages),
          "free page",
        )}`,
      );
    const p =
      parts.length === 0
        ? "The balloon was not used."
        : `${parts.join("; ").replace(/^./, (c) => c.toUpperCase())}. QEMU discarded them with ${plural(
            b((x) => x.discardCalls),
            "madvise(MADV_DONTNEED) call",
          )}; the mmu_notifier made KVM drop whatever it mapped there first (${plural(stat("remote_tlb_flush_requests"), "remote TLB flush request")} in the run).`;
    s.push(p);
  }
  const guestSwap = guestSwapSentence(r);
  if (guestSwap !== "") s.push(guestSwap);
  if ((v.pglazyfree ?? 0) > 0) s.push(`${plural(v.pglazyfree!, "page")} were marked lazily freeable (MADV_FREE).`);
  if ((v.oom_kill ?? 0) > 0) s.push(`The OOM killer ran ${plural(v.oom_kill!, "time")}.`);

  // The checker.
  const c = r.check;
  if (c.dataErrors === 0 && c.invariantViolations === 0) {
    s.push(
      `Every value read back as written, and no ${mmus.length === 1 && mmus[0] === "shadow" ? "shadow" : "EPT/NPT"} entry was left pointing at a page the host had taken away.`,
    );
  } else {
    s.push(
      `${plural(c.dataErrors, "value")} did not read back as written and ${plural(c.invariantViolations, "invariant violation")} ${c.invariantViolations === 1 ? "was" : "were"} found (see the check above).`,
    );
  }

  // Cost.
  const top = Object.entries(r.cost.breakdown)
    .filter(([, c]) => c > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([k, c]) => `${pct(c, r.cost.cycles)} in ${COST_PHRASE.get(k) ?? k} (${k})`);
  if (top.length > 0) s.push(`Under the cost model the run took ${n(r.cost.cycles)} cycles, ${top.join(" and ")}.`);
  if (r.native !== null && r.overhead !== null) {
    s.push(
      `The same guest workload on bare metal would take ${n(r.native.cycles)} cycles: virtualization made it ${(r.overhead + 1).toFixed(2)} times as long.`,
    );
  }
  return s.join(" ");
}

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
  lines.push(`RAM ${mib(r.host.ram)}, free at the end ${mib(r.host.free)}, swap in use ${mib(r.host.swapUsed)}`);
  lines.push(counterTable(out, HOST_COUNTERS, r.host.vmstat));
  if (r.host.ksm) lines.push(...formatKsm(out, r.host.ksm));

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

  lines.push(section(out, "check"));
  const c = r.check;
  if (c.dataErrors === 0 && c.invariantViolations === 0) {
    const ok = "OK: every value read back as written; no stale mapping";
    lines.push(out.isTTY ? pc.green(ok) : ok);
  } else {
    const bad = `FAILED: ${plural(c.dataErrors, "data error")}, ${plural(c.invariantViolations, "invariant violation")}`;
    lines.push(out.isTTY ? pc.red(bad) : bad);
    const shown = c.messages.slice(0, 20);
    for (const m of shown) lines.push(`  ${m}`);
    if (c.messages.length > shown.length) lines.push(dim(out, `  (${n(c.messages.length - shown.length)} more in --json)`));
  }

  lines.push(section(out, "summary"));
  lines.push(wrap(summary(r, scenario)));
  return `${lines.join("\n")}\n`;
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

/** What the guests' own reclaim swapped, and how much of it the host had to swap in first (double paging). */
function guestSwapSentence(r: Report): string {
  const vms = r.vms.filter((vm) => "pswpout" in vm.guest);
  if (vms.length === 0) return "";
  const g = (k: string) => vms.reduce((a, vm) => a + (vm.guest[k] ?? 0), 0);
  const who = vms.length === 1 && r.vms.length === 1 ? "The guest kernel" : "The guest kernels with swap";
  const out = g("pswpout");
  const dp = g("swapout_host_swapins");
  if (out === 0) return `${who} had swap but swapped nothing out.`;
  return (
    `${who} swapped ${plural(out, "page")} out to ${vms.length === 1 ? "its own swap disk" : "their own swap disks"} and ${plural(g("pswpin"), "page")} back in (pswpout, pswpin; kswapd scanned ${n(g("pgscan_kswapd"))} pages, direct reclaim ${n(g("pgscan_direct"))}). ` +
    `Double paging: ${plural(dp, "page")} the guest swapped out ${dp === 1 ? "was" : "were"} in host swap, so QEMU's read of ${dp === 1 ? "it" : "them"} for the guest's disk was a host swap-in first (swapout_host_swapins${out > 0 ? `, ${pct(dp, out)} of the guest's swap-outs` : ""}).`
  );
}
