// SPDX-License-Identifier: MIT
// The run report in SCENARIO.md's shape (`memvirt run --json`): host counters by their
// /proc/vmstat names, per VM the KVM counters (VM-level plus the sum over vCPUs), per vCPU
// counters, QEMU's RSS, hardware counters, cost, the checker's verdict and the time series.

import type { Counters } from "../hw/counters.js";
import { type HwCounters, hwCounters, sumHwCounters } from "../hw/mmu_stats.js";
import { applyCost, type CostResult } from "./cost.js";
import { vmCostCounts } from "./cost_counts.js";
import type { MigrationResult } from "../qemu/migration.js";
import { type DirtyHarvest, dirtyHarvestOf } from "../qemu/dirty_sync.js";
import type { MigrationRun } from "./migrate.js";
import type { Engine } from "./engine.js";
import type { PhaseReport } from "./phases.js";
import { type HW_FIGURES, type QEMU_FIGURES, qemuFigures, type REFERENCE_FIGURES } from "./report_figures.js";

export const REPORT_VERSION = "2.0.0";
/** The report's format: 2 states every quantity's unit in its key (docs/report.md lists the renames from 1). */
export const REPORT_FORMAT = 2;

export interface SeriesPoint {
  accesses: number;
  cycles: number;
  rssBytes: number;
  freeBytes: number;
  swapUsedBytes: number;
  /** Per interval since the previous point: */
  faults: number;
  exits: number;
  pfTaken: number;
  swapIns: number;
  swapOuts: number;
  /** With a virtio-balloon on some VM: the guests' free memory, and the balloons' size (bytes). */
  guestFreeBytes?: number;
  balloonBytes?: number;
}

export interface VmReport {
  name: string;
  mmu: string;
  backing: string;
  stats: Record<string, number>;
  vcpus: { id: number; stats: Record<string, number>; exitReasons: Record<string, number> }[];
  qemu: Counters<typeof QEMU_FIGURES>;
  guest: Record<string, number>;
  /** The hardware counters summed over the vCPUs, and figures derived from them. */
  hw: HwCounters & { references: Counters<typeof REFERENCE_FIGURES> } & Counters<typeof HW_FIGURES>;
  cost: CostResult;
  /** The same guest workload on bare metal (the native twin), or null when not run. */
  native: CostResult | null;
  /** cost.cycles / native.cycles - 1: what virtualization added, as a fraction. */
  overheadRatio: number | null;
  /** QEMU's virtio-balloon, when the VM has one: target and actual size (4 KiB pages) and what QEMU discarded. */
  balloon?: BalloonReport;
}

export interface BalloonReport {
  targetPages: number;
  actualPages: number;
  inflatedPages: number;
  deflatedPages: number;
  reportedPages: number;
  discardCalls: number;
}

export interface Report {
  format: typeof REPORT_FORMAT;
  memvirt: string;
  scenario: string;
  seed: number;
  accesses: number;
  host: {
    vmstat: Record<string, number>;
    ramBytes: number;
    freeBytes: number;
    swapUsedBytes: number;
    /** /sys/kernel/mm/ksm counters (KSM_COUNTERS), when the scenario has host.ksm. */
    ksm?: Record<string, number>;
    /** zswap's vmstat events and /sys/kernel/debug/zswap (ZSWAP_COUNTERS), when the scenario has host.zswap. */
    zswap?: Record<string, number>;
  };
  vms: VmReport[];
  cost: CostResult;
  /** All VMs' guests on bare metal, and the overhead of the whole run against it. */
  native: CostResult | null;
  overheadRatio: number | null;
  /** valuesRead and readDigest: what the guest read, the same under every MMU mode for a given scenario and seed. */
  check: { dataErrors: number; invariantViolations: number; messages: string[]; valuesRead: number; readDigest: number };
  series: SeriesPoint[];
  /**
   * Only when the scenario marks phases: "start" (from the beginning of the run to the first
   * boundary), then one per boundary in the order they happened, the last ending with the run.
   */
  phases?: PhaseReport[];
  /** Only when the scenario migrates a VM: per migration its rounds and totals (qemu/migration.ts MigrationResult). */
  migrations?: MigrationReport[];
}

export function buildReport(engine: Engine, scenarioName = ""): Report {
  const m = engine.machine;
  const vmstat = m.host.vmstat();
  const costs = engine.cost();
  const table = engine.costs;
  const natives = m.vms.map((vm) => (vm.native ? applyCost(table, vm.native.costCounts()) : null));
  const nativeCounts: Record<string, number> = {};
  for (const vm of m.vms)
    if (vm.native) for (const [k, c] of Object.entries(vm.native.costCounts())) nativeCounts[k] = (nativeCounts[k] ?? 0) + c;
  const native = natives.every((x) => x !== null) && natives.length > 0 ? applyCost(table, nativeCounts) : null;
  const overhead = (c: CostResult, n: CostResult | null) => (n === null || n.cycles === 0 ? null : c.cycles / n.cycles - 1);
  return {
    format: REPORT_FORMAT,
    memvirt: REPORT_VERSION,
    scenario: scenarioName,
    seed: engine.opts.seed ?? engine.scenario.seed,
    accesses: engine.accesses,
    host: {
      vmstat,
      ramBytes: m.host.mem.bytes,
      freeBytes: (vmstat.nr_free_pages ?? 0) * 4096,
      swapUsedBytes: m.host.swap ? (m.host.swap.totalSwapPages - m.host.swap.nrSwapPages) * 4096 : 0,
      ...(engine.scenario.host.ksm ? { ksm: m.host.ksm.counters() } : {}),
      ...(m.host.zswap ? { zswap: m.host.zswap.counters() } : {}),
    },
    vms: m.vms.map((vm, i) => {
      const kvm = vm.qemu.kvm;
      const hwTotals = sumHwCounters(kvm.vcpus.map((v) => hwCounters(v.mmu.stats)));
      const mm = vm.qemu.mm;
      // This VM's share of the events (host faults and swap-ins are counted on QEMU's mm).
      const vmCost = applyCost(table, vmCostCounts(vm));
      const walks = hwTotals.walks;
      return {
        name: vm.cfg.name,
        mmu: vm.cfg.mmu,
        backing: vm.cfg.backing,
        stats: kvm.statsWithVcpus(),
        vcpus: kvm.vcpus.map((v) => {
          const { exitReasons, ...stats } = v.stats;
          return { id: v.id, stats: { ...stats }, exitReasons: { ...exitReasons } };
        }),
        qemu: qemuFigures(vm.qemu.rss(), mm),
        guest:
          vm.kernel !== null
            ? { ...vm.kernel.stats, ...vm.kernel.swapStats }
            : { ...vm.selftest!.stats, virt_map_tables: vm.virtMap!.tablePages, virt_map_entries: vm.virtMap!.entryWrites },
        hw: {
          ...hwTotals,
          tlbHits: hwTotals.tlbHits,
          tlbMisses: hwTotals.tlbMisses,
          walks,
          references: {
            guestTable: hwTotals.guestTableReads,
            nestedTable: hwTotals.nestedTableReads,
            data: hwTotals.dataAccesses,
          },
          tableReadsPerWalk: walks === 0 ? 0 : (hwTotals.guestTableReads + hwTotals.nestedTableReads) / walks,
        },
        cost: vmCost,
        native: natives[i]!,
        overheadRatio: overhead(vmCost, natives[i]!),
        ...(vm.balloon !== null
          ? { balloon: { targetPages: vm.balloon.device.numPages, actualPages: vm.balloon.device.actual, ...vm.balloon.device.stats } }
          : {}),
      };
    }),
    cost: costs,
    native,
    overheadRatio: overhead(costs, native),
    check: {
      dataErrors: m.checker.dataErrors,
      invariantViolations: m.checker.invariantViolations,
      messages: [...m.checker.violations],
      valuesRead: m.checker.valuesRead,
      readDigest: m.checker.readDigest,
    },
    series: engine.series,
    ...(engine.hasPhases ? { phases: engine.phaseReports()! } : {}),
    ...(m.migrations.length > 0 ? { migrations: m.migrations.map(migrationReport) } : {}),
  };
}

// ---- live migration ----
/** One pre-copy round in the report: MigrationIteration with its units in the keys. */
export interface MigrationIterationReport {
  iteration: number;
  sentPages: number;
  zeroPages: number;
  bytes: number;
  seconds: number;
  dirtyPages: number;
  dirtyPagesPerSecond: number;
  remainingBytes: number;
  throttlePercent: number;
}

/** A migration in the report: the VM, the link and how the log was harvested, then MigrationResult with its units in the keys. */
export interface MigrationReport {
  vm: string;
  bandwidthBytesPerSecond: number;
  downtimeLimitSeconds: number;
  dirtyLog: DirtyHarvest;
  mode: MigrationResult["mode"];
  status: MigrationResult["status"];
  forced: boolean;
  iterations: MigrationIterationReport[];
  totalSeconds: number;
  downtimeSeconds: number;
  sentPages: number;
  zeroPages: number;
  bytes: number;
  sentToRamRatio: number;
  throttledSeconds: number;
  maxThrottlePercent: number;
  postcopyFaults: number;
  postcopyFaultLatencySeconds: number;
  postcopyFaultLatencyMaxSeconds: number;
  postcopyBackgroundPages: number;
}

function migrationReport(mr: MigrationRun): MigrationReport {
  const g = mr.migration;
  const r = g.result;
  return {
    vm: mr.vm.cfg.name,
    bandwidthBytesPerSecond: g.params.bandwidth,
    downtimeLimitSeconds: g.params.downtimeLimit,
    dirtyLog: dirtyHarvestOf(g.src.kvm),
    mode: r.mode,
    status: r.status,
    forced: r.forced,
    iterations: r.iterations.map((it) => ({
      iteration: it.iteration,
      sentPages: it.pagesSent,
      zeroPages: it.zeroPages,
      bytes: it.bytes,
      seconds: it.seconds,
      dirtyPages: it.dirtyPages,
      dirtyPagesPerSecond: it.dirtyRate,
      remainingBytes: it.remaining,
      throttlePercent: it.throttle,
    })),
    totalSeconds: r.totalTime,
    downtimeSeconds: r.downtime,
    sentPages: r.pagesSent,
    zeroPages: r.zeroPages,
    bytes: r.bytes,
    sentToRamRatio: r.ratioToRam,
    throttledSeconds: r.throttledTime,
    maxThrottlePercent: r.maxThrottle,
    postcopyFaults: r.postcopyFaults,
    postcopyFaultLatencySeconds: r.postcopyFaultLatency,
    postcopyFaultLatencyMaxSeconds: r.postcopyFaultLatencyMax,
    postcopyBackgroundPages: r.postcopyBackgroundPages,
  };
}
