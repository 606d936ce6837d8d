// SPDX-License-Identifier: MIT
// The run's story in words, from the report alone: the summary paragraph, exits by reason
// and the overhead against bare metal. `memvirt run` prints them and the web page shows
// them, so both say the same thing in the same words.

import { COST_EVENTS } from "./cost.js";
import { migrationSentence } from "./migration_summary.js";
import type { Report, VmReport } from "./report.js";
import type { Scenario } from "./scenario_schema.js";

const MiB = 2 ** 20;

/** A count with thousands separators (en-US, as the CLI prints). */
function n(v: number): string {
  return v.toLocaleString("en-US");
}

/** Bytes as MiB: whole numbers plain, others with up to two decimals. */
function mib(bytes: number): string {
  const v = bytes / MiB;
  return `${Number.isInteger(v) ? n(v) : v.toLocaleString("en-US", { maximumFractionDigits: 2 })} MiB`;
}

/** A share as a percentage that never rounds a part up to the whole or down to nothing. */
export function pct(part: number, whole: number): string {
  if (whole === 0) return "0%";
  const p = (part / whole) * 100;
  if (part !== whole && p > 99.5) return `${Math.min(p, 99.9).toFixed(1)}%`;
  if (part !== 0 && p < 0.05) return "<0.1%";
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

function plural(v: number, one: string, many = `${one}s`): string {
  return `${n(v)} ${v === 1 ? one : many}`;
}

export interface ExitReasonRow {
  reason: string;
  total: number;
  /** Share of the VM's exits, as pct() gives it. */
  share: string;
  /** Exits per vCPU, in vcpus order. */
  per: number[];
}

/** A VM's exits by reason, most frequent first, with each vCPU's count. */
export function exitsByReason(vm: VmReport): ExitReasonRow[] {
  const reasons = new Map<string, number[]>();
  vm.vcpus.forEach((v, i) => {
    for (const [reason, c] of Object.entries(v.exitReasons)) {
      const row = reasons.get(reason) ?? vm.vcpus.map(() => 0);
      row[i] = c;
      reasons.set(reason, row);
    }
  });
  const totalExits = vm.stats.exits ?? 0;
  return [...reasons.entries()]
    .map(([reason, per]) => ({ reason, per, total: per.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.total - a.total)
    .map((x) => ({ ...x, share: pct(x.total, totalExits) }));
}

/** "; natively N, so virtualization added P%", or "" without a native baseline. */
export function overheadText(native: { cycles: number } | null, overhead: number | null): string {
  if (native === null || overhead === null) return "";
  return `; natively ${n(native.cycles)}, so virtualization added ${(overhead * 100).toFixed(overhead < 0.1 ? 1 : 0)}%`;
}

const COST_PHRASE = new Map(COST_EVENTS.map((e) => [e.name, e.phrase]));

function sum(r: Report, f: (vm: VmReport) => number): number {
  return r.vms.reduce((a, vm) => a + f(vm), 0);
}

/** The run's story in one paragraph, every figure taken from the report. */
const pswpinOf = (v: Record<string, number>) => v.pswpin ?? 0;

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
  const rss = sum(r, (vm) => vm.qemu.rssBytes);
  const peak = Math.max(rss, ...r.series.map((p) => p.rssBytes));
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
  } else if (pfTaken > 0 && majFlt > 0) {
    // issue 17: first touches apart from re-faults. do_swap_page() counts a swap-cache hit as a minor fault.
    const cacheHits = v.swap_cache_hit ?? 0;
    const wpReuse = v.wp_page_reuse ?? 0;
    const retries = stat("mmu_fault_retries");
    touch += ` KVM handled ${plural(pfTaken, "fault")} (pf_taken), each after ${violation}: ${plural(minFlt - cacheHits - wpReuse, "first touch", "first touches")} of a ${unit} (a new host page, or the zero page for a read), ${plural(majFlt, "re-fault")} of pages reclaimed earlier and read back from swap (pswpin ${n(pswpinOf(v))}; workingset_refault_anon ${n(v.workingset_refault_anon ?? 0)}), ${plural(cacheHits, "re-fault")} that found the page still in the swap cache (swap_cache_hit, memvirt's count), ${plural(wpReuse, "write")} to a page swapped in read-only, made writable in place (wp_page_reuse, memvirt's)${retries > 0 ? `, and ${plural(retries, "retry", "retries")} (mmu_fault_retries)` : ""}; ${n(pfFixed)} installed an entry (pf_fixed), and the host faulted in QEMU's pages ${hostFaults}.`;
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
    // A cold 2D walk reads n*m + n + m entries (24 for 4 + 4 levels), 25 references with the data.
    const cold =
      mmus.length === 1 && mmus[0] !== "shadow"
        ? "; a cold 4-level walk under EPT/NPT would read 24, 25 references with the data (translate --cold shows them)"
        : "";
    s.push(`${pct(misses, lookups)} of translations missed the TLB; a walk cost ${perWalk} table reads on average${cold}.`);
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
      p += ` the mmu_notifier told KVM of ${plural(stat("mmu_notifier_invalidations"), "invalidation")} (mmu_notifier_invalidations), in which it zapped ${plural(stat("mmu_notifier_zapped"), "entry", "entries")} (mmu_notifier_zapped) and asked for ${plural(stat("remote_tlb_flush_requests"), "remote TLB flush", "remote TLB flushes")} (remote_tlb_flush_requests)`;
      const retries = stat("mmu_fault_retries");
      if (retries > 0)
        p += `, and ${plural(retries, "fault")} retried because an invalidation ran while ${retries === 1 ? "it was" : "they were"} in flight`;
      p += ".";
    }
    s.push(p);
  } else if (pswpout === 0) {
    s.push("The host never ran short of memory: no reclaim, no swap.");
  }
  // host.zswap: where reclaim's swap-outs went instead of the device.
  const zs = r.host.zswap;
  if (zs && (zs.zswpout ?? 0) + (zs.swpout_zero ?? 0) > 0) {
    s.push(
      `zswap compressed ${plural(zs.zswpout ?? 0, "page")} into its pool (${mib(zs.pool_total_size ?? 0)} of RAM at the end) and served ${n(zs.zswpin ?? 0)} swap-ins without I/O; ${plural(zs.pool_limit_hit ?? 0, "store")} found the pool full and ${n(zs.written_back_pages ?? 0)} pages were written back to the device; ${plural(zs.swpout_zero ?? 0, "zero page")} went to the zeromap.`,
    );
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
  // host.ksm: what ksmd merged (pages_sharing and ksm_zero_pages are the page frames it saved).
  const ksm = r.host.ksm;
  if (ksm !== undefined) {
    const saved = (ksm.pages_sharing ?? 0) + (ksm.ksm_zero_pages ?? 0);
    s.push(
      `ksmd made ${plural(ksm.full_scans ?? 0, "full scan")} and ${plural(ksm.pages_shared ?? 0, "KSM page")} shared by ${n(ksm.pages_sharing ?? 0)} more mappings (pages_shared, pages_sharing), with ${n(ksm.ksm_zero_pages ?? 0)} pages merged with the zero page: ${mib(saved * 4096)} of host memory saved; each merge and each copy-on-write break went through the mmu_notifier.`,
    );
  }
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
  if (r.native !== null && r.overheadRatio !== null) {
    s.push(
      `The same guest workload on bare metal would take ${n(r.native.cycles)} cycles: virtualization made it ${(r.overheadRatio + 1).toFixed(2)} times as long.`,
    );
  }
  if (r.migrations !== undefined) s.push(migrationSentence(r));
  return s.join(" ");
}

/** The guests' own swap (guest.swap) and double paging. */
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
