// SPDX-License-Identifier: MIT
// Cross-field checks of a scenario (names that must exist, limits that depend on other
// keys) and the defaults that depend on other keys (watermarks from host RAM, a named
// region's size). Each check names the key at fault and what would be valid.

import type { z } from "zod";
import { PAGE_SIZE } from "../hw/addr.js";
import { GUEST_PHYS_LIMIT, HUGETLB_PAGE, USER_VA_LIMIT } from "./scenario_limits.js";
import { checkPhases } from "./scenario_phases.js";
import type { RawScenario } from "./scenario_schema.js";
import { checkSelftestVm, selftestRegionSizes } from "./scenario_check_selftest.js";
import { didYouMean } from "./scenario_suggest.js";
import { formatSize } from "./size.js";

type RawVm = RawScenario["vms"][number];
type RawProcess = RawVm["processes"][number];
type RawStep = RawProcess["steps"][number];

/**
 * Linux's zone watermarks for a host of `ram` bytes, as one zone.
 * Mirrors calculate_min_free_kbytes() (min_free_kbytes = int_sqrt(16 * lowmem KiB),
 * clamped to 128..262144) and __setup_per_zone_wmarks() (low = min + gap, high = low +
 * gap, gap = max(min / 4, managed * watermark_scale_factor / 10000), factor 10).
 * simplified: one zone, all RAM managed, no watermark boost.
 */
export function linuxWatermarks(ram: number): { min: number; low: number; high: number } {
  const kbytes = Math.floor(ram / 1024);
  const minFreeKbytes = Math.min(262144, Math.max(128, Math.floor(Math.sqrt(kbytes * 16))));
  const managed = Math.floor(ram / PAGE_SIZE);
  const minPages = Math.floor(minFreeKbytes / 4);
  const gap = Math.max(Math.floor(minPages / 4), Math.floor((managed * 10) / 10000));
  return { min: minPages * PAGE_SIZE, low: (minPages + gap) * PAGE_SIZE, high: (minPages + 2 * gap) * PAGE_SIZE };
}

type Path = (string | number)[];
type Report = (path: Path, message: string) => void;

const list = (names: Iterable<string>) => {
  const a = [...names];
  return a.length === 0 ? "none" : a.map((n) => `"${n}"`).join(", ");
};

function unknownName(what: string, given: string, known: Iterable<string>, valid: string): string {
  const names = [...known];
  const guess = didYouMean(given, names);
  return `no ${what} named "${given}"${valid}; ${guess === undefined ? `known: ${list(names)}` : `did you mean "${guess}"?`}`;
}

/** The cross-field checks; registered with superRefine on the whole scenario. */
export function checkScenario(s: RawScenario, ctx: z.RefinementCtx): void {
  const report: Report = (path, message) => ctx.addIssue({ code: "custom", path, message });
  checkHost(s, report);
  checkVms(s, report);
  checkTimeline(s, report);
  checkPhases(s, ctx);
}

function checkHost(s: RawScenario, report: Report): void {
  const { ram, watermarks: w } = s.host;
  const at = (k: string): Path => ["host", "watermarks", k];
  if (w.low < w.min) report(at("low"), `${formatSize(w.low)} is below min (${formatSize(w.min)}); min <= low <= high`);
  else if (w.high < w.low) report(at("high"), `${formatSize(w.high)} is below low (${formatSize(w.low)}); min <= low <= high`);
  else if (w.high >= ram)
    report(at("high"), `${formatSize(w.high)} is not below host RAM (${formatSize(ram)}); watermarks well below host.ram`);
  // host.zswap
  const zs = s.host.zswap;
  if (zs !== undefined && s.host.swap === 0)
    report(["host", "zswap"], "zswap sits in front of a swap device; set host.swap (e.g. 1GiB) or remove zswap");
  if (zs !== undefined && zs.maxPoolPercent > 100)
    report(["host", "zswap", "maxPoolPercent"], `${zs.maxPoolPercent} is above 100; a percent of host RAM`);
  if (zs !== undefined && zs.acceptThresholdPercent > 100)
    report(["host", "zswap", "acceptThresholdPercent"], `${zs.acceptThresholdPercent} is above 100; a percent of the pool limit`);
}

function checkVms(s: RawScenario, report: Report): void {
  const names = new Map<string, number>();
  let vendor: { mmu: string; index: number } | undefined;
  let hugetlb = 0;
  s.vms.forEach((vm, i) => {
    const at = (...rest: Path): Path => ["vms", i, ...rest];
    const prev = names.get(vm.name);
    if (prev !== undefined) report(at("name"), `"${vm.name}" is already the name of vms[${prev}]; VM names are unique`);
    else names.set(vm.name, i);

    if (vm.mmu === "ept" || vm.mmu === "npt") {
      if (vendor === undefined) vendor = { mmu: vm.mmu, index: i };
      else if (vendor.mmu !== vm.mmu) {
        report(
          at("mmu"),
          `"${vm.mmu}" on a host where vms[${vendor.index}] uses "${vendor.mmu}": EPT is Intel's and NPT AMD's, and a host has one vendor; use "${vendor.mmu}" (or shadow) for every VM`,
        );
      }
    }
    if (vm.balloon !== undefined && vm.guest.kernel === "none")
      report(
        at("balloon"),
        "a balloon needs a guest driver, and guest.kernel none has no guest kernel; remove balloon or use kernel linux",
      );
    // guest reclaim and swap (guest/vmscan.ts)
    if (vm.guest.swap > 0 && vm.guest.kernel === "none")
      report(
        at("guest", "swap"),
        "guest swap needs a guest kernel to reclaim into it, and guest.kernel none has none; remove guest.swap or use kernel linux",
      );
    if (vm.balloon !== undefined && HUGETLB_PAGE[vm.backing] !== undefined)
      report(
        at("balloon"),
        `memvirt's balloon discards 4 KiB pages and does not model QEMU's partially ballooned huge pages; use backing 4k or thp with a balloon`,
      );
    // ---- dirty logging options
    const dl = vm.dirtyLog;
    if (dl !== undefined) {
      if (dl.initiallySet && !dl.manualProtect)
        report(
          at("dirtyLog", "initiallySet"),
          "initiallySet needs manualProtect: true (KVM_DIRTY_LOG_INITIALLY_SET is a flag of manual protect)",
        );
      if (dl.mode === "ring" && dl.manualProtect)
        report(
          at("dirtyLog", "manualProtect"),
          "manual protect is for the dirty bitmaps; the dirty ring re-protects on KVM_RESET_DIRTY_RINGS; use mode wp or drop manualProtect",
        );
      if (dl.mode === "ring" && (dl.ringEntries & (dl.ringEntries - 1)) !== 0)
        report(
          at("dirtyLog", "ringEntries"),
          `${dl.ringEntries} entries; a dirty ring's size is a power of two, for example ${2 ** Math.floor(Math.log2(dl.ringEntries))}`,
        );
      if (dl.mode === "pml" && vm.mmu !== "ept")
        report(
          at("dirtyLog", "mode"),
          `PML is Intel's and logs EPT dirty flags: set mmu to ept, or use mode wp (write protection) under ${vm.mmu}`,
        );
      if (dl.ringEntries > 65536)
        report(at("dirtyLog", "ringEntries"), `${dl.ringEntries} entries; KVM allows at most 65536 (KVM_DIRTY_RING_MAX_ENTRIES)`);
    }
    if (vm.backing === "thp" && s.host.thp === "never") {
      report(at("backing"), `"thp" backing does nothing while host.thp is never; set host.thp to madvise or always, or use backing 4k`);
    }
    const huge = HUGETLB_PAGE[vm.backing];
    if (huge !== undefined) {
      if (vm.ram % huge !== 0) {
        report(
          at("ram"),
          `${formatSize(vm.ram)} is not a multiple of the ${formatSize(huge)} pages of ${vm.backing} backing; use ${formatSize(Math.ceil(vm.ram / huge) * huge)}`,
        );
      }
      hugetlb += vm.ram;
      if (hugetlb > s.host.ram) {
        report(
          at("backing"),
          `hugetlb-backed guest RAM adds up to ${formatSize(hugetlb)}, more than host RAM (${formatSize(s.host.ram)}); hugetlb pages are never swapped, so they must fit in host.ram`,
        );
      }
    }
    checkProcesses(vm, at, report);
  });
}

function checkProcesses(vm: RawVm, at: (...rest: Path) => Path, report: Report): void {
  checkSelftestVm(vm, at, report, (st, live, here) => checkRegionStep(st as RegionStep, live, here, report));
  const names = new Map<string, number>();
  vm.processes.forEach((p, j) => {
    const prev = names.get(p.name);
    if (prev !== undefined)
      report(at("processes", j, "name"), `"${p.name}" is already the name of processes[${prev}]; process names are unique in a VM`);
    else names.set(p.name, j);
    if (p.vcpu >= vm.vcpus) {
      report(
        at("processes", j, "vcpu"),
        `vCPU ${p.vcpu} does not exist; "${vm.name}" has ${vm.vcpus} vCPU${vm.vcpus === 1 ? "" : "s"}, so 0 to ${vm.vcpus - 1}`,
      );
    }
  });
  // A guest without a kernel has its own step checks (checkSelftestVm).
  if (vm.guest.kernel === "none") return;
  vm.processes.forEach((p, j) => {
    checkSteps(vm, p, (k, ...rest) => at("processes", j, "steps", k, ...rest), names, report);
  });
}

function checkSteps(
  vm: RawVm,
  p: RawProcess,
  at: (k: number, ...rest: Path) => Path,
  processes: Map<string, number>,
  report: Report,
): void {
  const live = new Map<string, number>();
  const vaLimit = USER_VA_LIMIT[vm.guest.levels]!;
  p.steps.forEach((st, k) => {
    const here = (...rest: Path) => at(k, st.kind, ...rest);
    switch (st.kind) {
      case "mmap":
        if (live.has(st.name)) report(here("name"), `region "${st.name}" is already mapped; munmap it first or choose another name`);
        else if (st.size > vaLimit) {
          report(
            here("size"),
            `${formatSize(st.size)} is larger than a process's address space; at most ${formatSize(vaLimit)} with ${vm.guest.levels}-level guest tables`,
          );
        } else live.set(st.name, st.size);
        break;
      case "mmapFile":
        if (live.has(st.name)) report(here("name"), `region "${st.name}" is already mapped; munmap it first or choose another name`);
        else if (st.size > vaLimit)
          report(here("size"), `${formatSize(st.size)} is larger than a process's address space; at most ${formatSize(vaLimit)}`);
        else live.set(st.name, st.size);
        break;
      case "munmap":
        if (!live.delete(st.name)) report(here("name"), unknownName("region", st.name, live.keys(), " is mapped at this step"));
        break;
      case "switch":
        if (st.to === p.name) report(here("to"), `"${st.to}" is this process; switch to another process of "${vm.name}"`);
        else if (!processes.has(st.to)) report(here("to"), unknownName("process", st.to, processes.keys(), ` in "${vm.name}"`));
        break;
      case "touch":
      case "random":
      case "sequential":
      case "zipf":
      case "pointerChase":
      case "phases":
        checkRegionStep(st, live, here, report);
        break;
      case "mmapChurn":
      case "processChurn":
        if (st.size > vaLimit)
          report(here("size"), `${formatSize(st.size)} is larger than a process's address space; at most ${formatSize(vaLimit)}`);
        break;
      case "trace":
        break;
    }
  });
}

type RegionStep = Extract<RawStep, { kind: "touch" | "random" | "sequential" | "zipf" | "pointerChase" | "phases" }>;

function checkRegionStep(st: RegionStep, live: Map<string, number>, here: (...rest: Path) => Path, report: Report): void {
  let bytes = st.size;
  if (st.name !== undefined) {
    const region = live.get(st.name);
    if (region === undefined) {
      report(here("name"), unknownName("region", st.name, live.keys(), " is mapped at this step") + " (or map it first with an mmap step)");
      return;
    }
    if (st.size !== undefined && st.size > region) {
      report(
        here("size"),
        `${formatSize(st.size)} is larger than region "${st.name}" (${formatSize(region)}); at most ${formatSize(region)}, or leave size out`,
      );
    }
    bytes ??= region;
  } else if (st.size === undefined) {
    report(here(), `neither size nor name given; size: for a fresh region (like 64MiB), or name: of a region an earlier mmap step made`);
    return;
  }
  if (st.kind === "sequential" && bytes !== undefined && st.stride > bytes) {
    report(here("stride"), `${formatSize(st.stride)} is larger than the region (${formatSize(bytes)}); a stride up to the region's size`);
  }
  if (st.kind === "phases" && bytes !== undefined && st.workingSet > bytes) {
    report(
      here("workingSet"),
      `${formatSize(st.workingSet)} is larger than the region (${formatSize(bytes)}); a working set up to the region's size`,
    );
  }
  if (st.kind === "pointerChase" && bytes !== undefined && st.nodeSize > bytes) {
    report(here("nodeSize"), `${formatSize(st.nodeSize)} is larger than the region (${formatSize(bytes)})`);
  }
}

/** A timeline dirtyLog action against its VM's dirtyLog options. */
function checkDirtyLogAction(
  a: { vm: string; op: string; chunk: number },
  vm: RawVm | undefined,
  names: Iterable<string>,
  here: (...rest: Path) => Path,
  report: Report,
): void {
  if (vm === undefined) {
    report(here("vm"), unknownName("VM", a.vm, names, ""));
    return;
  }
  if (a.chunk % 64 !== 0)
    report(
      here("chunk"),
      `${a.chunk} pages; KVM_CLEAR_DIRTY_LOG takes multiples of 64 pages, for example ${Math.max(64, a.chunk - (a.chunk % 64))}`,
    );
  const o = vm.dirtyLog;
  if (a.op === "clear" && (o === undefined || !o.manualProtect || o.mode === "ring"))
    report(here("op"), `clear needs KVM_CLEAR_DIRTY_LOG: set vms[${vm.name}].dirtyLog to {mode: wp, manualProtect: true}, or use op get`);
}

function checkTimeline(s: RawScenario, report: Report): void {
  const vms = new Map(s.vms.map((vm) => [vm.name, vm]));
  s.timeline.forEach((ev, i) => {
    const a = ev.action;
    const here = (...rest: Path): Path => ["timeline", i, a.kind, ...rest];
    switch (a.kind) {
      case "madvise":
        if (!vms.has(a.vm)) report(here("vm"), unknownName("VM", a.vm, vms.keys(), ""));
        else if (a.gpa + a.size > GUEST_PHYS_LIMIT) {
          report(
            here("size"),
            `the range ends at ${formatSize(a.gpa + a.size)}, past the guest-physical address space; gpa + size at most ${formatSize(GUEST_PHYS_LIMIT)} (2^46)`,
          );
        }
        break;
      case "balloon": {
        const vm = vms.get(a.vm);
        if (vm === undefined) report(here("vm"), unknownName("VM", a.vm, vms.keys(), ""));
        else if (vm.balloon === undefined)
          report(here("vm"), `VM "${a.vm}" has no balloon device; add \`balloon: {}\` to it (or deflateOnOom / freePageReporting)`);
        else if (a.target > vm.ram)
          report(
            here("target"),
            `${formatSize(a.target)} is more than the VM's RAM (${formatSize(vm.ram)}); QEMU caps it at the RAM size, so use at most that`,
          );
        break;
      }
      // ---- live migration ----
      case "migrate": {
        const vm = vms.get(a.vm);
        if (!vm) report(here("vm"), unknownName("VM", a.vm, vms.keys(), ""));
        else if (vm.guest.kernel === "none")
          report(here("vm"), `${a.vm} runs without a guest kernel; migration needs guest.kernel (the default)`);
        else if (vm.balloon !== undefined)
          report(here("vm"), `${a.vm} has a balloon device, and memvirt does not migrate the device's state; remove balloon to migrate it`);
        else if (a.mode === "postcopy" && vm.backing.startsWith("hugetlb"))
          report(here("mode"), `post-copy of hugetlb-backed RAM (${vm.backing}) is not modelled; use precopy, or backing 4k or thp`);
        if (s.timeline.some((o, j) => j < i && o.action.kind === "migrate" && o.action.vm === a.vm))
          report(here("vm"), `${a.vm} is migrated twice; one migrate per VM`);
        if (a.throttleInitial > 99) report(here("throttleInitial"), `${a.throttleInitial} is above 99; a percent from 1 to 99`);
        if (a.throttleIncrement > 99) report(here("throttleIncrement"), `${a.throttleIncrement} is above 99; a percent from 1 to 99`);
        if (s.timeline.some((o) => o.action.kind === "dirtyLog" && o.action.vm === a.vm))
          report(
            here("vm"),
            `${a.vm} also has dirtyLog actions, which would take the migration's dirty log; drop them, or migrate another VM`,
          );
        if (a.clearBitmapShift > 31)
          report(here("clearBitmapShift"), `${a.clearBitmapShift} is above 31; a shift from 6 to 31 (QEMU's default 18)`);
        break;
      }
      case "dirtyLog":
        checkDirtyLogAction(a, vms.get(a.vm), vms.keys(), here, report);
        break;
    }
  });
}

// ---- Defaults that depend on other keys ----------------------------------------------

type Fill<K> = K extends "touch" | "random" | "zipf" | "pointerChase" | "phases"
  ? { size: number }
  : K extends "sequential"
    ? { size: number; accesses: number }
    : K extends "trace"
      ? { path: string }
      : unknown;

/** A step with its context-dependent defaults filled in: a region step's size, a sequential pass's accesses, a trace's path. */
export type FilledStep = RawStep extends infer S ? (S extends { kind: infer K } ? Omit<S, keyof Fill<K>> & Fill<K> : never) : never;
export type FilledProcess = Omit<RawProcess, "steps"> & { steps: FilledStep[] };
export type FilledVm = Omit<RawVm, "processes"> & { processes: FilledProcess[] };
export type FilledScenario = Omit<RawScenario, "vms"> & { vms: FilledVm[] };

function fillSteps(steps: readonly RawStep[], regions: ReadonlyMap<string, number>): FilledStep[] {
  const live = new Map<string, number>(regions);
  return steps.map((st): FilledStep => {
    switch (st.kind) {
      case "mmap":
      case "mmapFile":
        live.set(st.name, st.size);
        return st;
      case "munmap":
        live.delete(st.name);
        return st;
      case "touch":
      case "random":
      case "zipf":
      case "pointerChase":
      case "phases": {
        const size = st.size ?? live.get(st.name!)!;
        return { ...st, size };
      }
      case "sequential": {
        const size = st.size ?? live.get(st.name!)!;
        return { ...st, size, accesses: st.accesses ?? Math.ceil(size / st.stride) };
      }
      case "trace":
        return { ...st, path: st.file };
      default:
        return st;
    }
  });
}

/** Fill the defaults that depend on other keys; runs after checkScenario passed. */
export function fillScenario(s: RawScenario): FilledScenario {
  return {
    ...s,
    vms: s.vms.map((vm) => ({ ...vm, processes: vm.processes.map((p) => ({ ...p, steps: fillSteps(p.steps, selftestRegionSizes(vm)) })) })),
  };
}
