// SPDX-License-Identifier: MIT
// dirty_log_perf_test (tools/testing/selftests/kvm/dirty_log_perf_test.c) on memvirt: the vCPUs
// populate their memory, dirty logging starts on the test memslots, then each iteration the
// vCPUs write their memory again and the test collects the log (KVM_GET_DIRTY_LOG, and with
// manual protect KVM_CLEAR_DIRTY_LOG), finally logging stops. The vCPU passes are timed from
// their own counters, the ioctls from the work KVM did (dirty_log_work.ts) under the cost model.
//
// simplified: the test region shares the VMM's RAM memslots (the real test gives it slots of its own), so
// logging also covers the guest's page tables and the bitmaps are those of the whole slots.

import { dirtyLogWork } from "../kvm/dirty_log_work.js";
import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  dirtyBitmapWords,
  kvmClearDirtyLog,
  kvmEnableManualDirtyLogProtect,
  kvmGetDirtyLog,
  kvmSetMemslotFlags,
} from "../kvm/dirty_log.js";
import type { Kvm } from "../kvm/kvm.js";
import type { Memslot } from "../kvm/memslot.js";
import type { Backing } from "../qemu/vm.js";
import { applyCost } from "./cost.js";
import { MAX_VCPUS } from "./scenario_limits.js";
import { DEFAULT_MODEL, type ModelOptions } from "./selftest_demand_paging.js";
import { Memstress, passCycles, seconds, timespec } from "./selftest_memstress.js";
import {
  SelftestAssert,
  atoiNonNegative,
  atoiPositive,
  backingSrcHelp,
  checkVcpuBytes,
  checkVcpus,
  getopt,
  guestModes,
  guestModesHelp,
  memstressPreamble,
  parseBackingSrc,
  parseSize,
} from "./selftest_options.js";

/** TEST_HOST_LOOP_N. */
const TEST_HOST_LOOP_N = 2;
const PAGE = 4096;

export const DIRTY_LOG_PERF_OPTSTRING = "ab:c:eghi:m:nop:r:s:v:x:w:";

export interface DirtyLogPerfParams {
  vcpus: number;
  vcpuBytes: number;
  iterations: number;
  src: { name: string; backing: Backing };
  partition: boolean;
  writePercent: number;
  random: boolean;
  /** guest_random_seed (1 unless -r). */
  seed: number;
  /** dirty_log_manual_caps: KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET, or 0 with -g. */
  manualCaps: number;
  modes: { mode: number; levels: 4 | 5 }[];
}

/** The kvm module parameter the test runs under (memvirt's --eager-page-split). */
export interface DirtyLogPerfModel extends ModelOptions {
  eagerPageSplit: boolean;
}

export const DEFAULT_DIRTY_LOG_MODEL: DirtyLogPerfModel = { ...DEFAULT_MODEL, eagerPageSplit: true };

export function dirtyLogPerfHelp(): string {
  return `
usage: dirty_log_perf_test [-h] [-a] [-i iterations] [-p offset] [-g] [-m mode] [-n] [-b vcpu bytes] [-v vcpus] [-o] [-r random seed ] [-s mem type][-x memslots] [-w percentage] [-c physical cpus to run test on]

 -a: access memory randomly rather than in order.
 -i: specify iteration counts (default: ${TEST_HOST_LOOP_N})
 -g: Do not enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2. This
     makes KVM_GET_DIRTY_LOG clear the dirty log (i.e.
     KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE is not enabled)
     and writes will be tracked as soon as dirty logging is
     enabled on the memslot (i.e. KVM_DIRTY_LOG_INITIALLY_SET
     is not enabled).
 -p: specify guest physical test memory offset
     Warning: a low offset can conflict with the loaded test code.
     (memvirt: not modelled, refused)
${guestModesHelp()} -n: Run the vCPUs in nested mode (L2)
     (memvirt: not modelled, refused)
 -e: Run vCPUs while dirty logging is being disabled.  This
     can significantly increase runtime, especially if there
     isn't a dedicated pCPU for the main thread.
     (memvirt: not modelled, refused; eager page splitting is --eager-page-split)
 -b: specify the size of the memory region which should be
     dirtied by each vCPU. e.g. 10M or 3G.
     (default: 1G)
 -v: specify the number of vCPUs to run.
 -o: Overlap guest memory accesses instead of partitioning
     them into a separate region of memory for each vCPU.
 -r: specify the starting random seed.
${backingSrcHelp("-s")} -x: Split the memory region into this number of memslots.
     (default: 1)
     (memvirt: only 1)
 -w: specify the percentage of pages which should be written to
     as an integer from 0-100 inclusive. This is probabilistic,
     so -w X means each page has an X% chance of writing
     and a (100-X)% chance of reading.
     (default: 100 i.e. all pages are written to.)
 -c: Pin tasks to physical CPUs.  (memvirt: not modelled, refused)

`;
}

/** What memvirt cannot do for an option, as a refusal of its own. */
function notModelled(opt: string, why: string): never {
  throw new SelftestAssert(`-${opt}: ${why}`, true);
}

/** main()'s option loop and checks; "help" for -h (and for an option it does not know, as help() does). */
export function parseDirtyLogPerf(argv: readonly string[]): DirtyLogPerfParams | "help" {
  const p: DirtyLogPerfParams = {
    vcpus: 1,
    vcpuBytes: 2 ** 30,
    iterations: TEST_HOST_LOOP_N,
    src: { name: "anonymous", backing: "4k" },
    partition: true,
    writePercent: 100,
    random: false,
    seed: 1,
    manualCaps: KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET,
    modes: [],
  };
  const modeArgs: string[] = [];
  for (const { opt, arg } of getopt(argv, DIRTY_LOG_PERF_OPTSTRING)) {
    switch (opt) {
      case "a":
        p.random = true;
        break;
      case "b":
        p.vcpuBytes = parseSize(arg);
        break;
      case "c":
        notModelled("c", `${arg}: memvirt does not model host CPUs, so vCPU threads cannot be pinned; run without -c`);
        break;
      case "e":
        notModelled(
          "e",
          "memvirt runs the vCPUs and the ioctls in turn, so vCPUs cannot run while dirty logging is being disabled (what -e measures is the mmu_lock contention); for eager page splitting, the kvm.eager_page_split module parameter, use --eager-page-split Y|N",
        );
        break;
      case "g":
        p.manualCaps = 0;
        break;
      case "i":
        p.iterations = atoiPositive("Number of iterations", arg);
        break;
      case "m":
        modeArgs.push(arg);
        break;
      case "n":
        notModelled("n", "memvirt does not model nested virtualization (L2); run without -n");
        break;
      case "o":
        p.partition = false;
        break;
      case "p":
        notModelled("p", `${arg}: memvirt places the test region where memstress does without -p (the top of guest RAM); run without -p`);
        break;
      case "r":
        p.seed = atoiPositive("Random seed", arg);
        break;
      case "s":
        p.src = parseBackingSrc(arg);
        break;
      case "v":
        p.vcpus = atoiPositive("Number of vCPUs", arg);
        checkVcpus(p.vcpus, MAX_VCPUS);
        break;
      case "w":
        p.writePercent = atoiNonNegative("Write percentage", arg);
        if (p.writePercent > 100) throw new SelftestAssert("Write percentage must be between 0 and 100");
        break;
      case "x":
        if (atoiPositive("Number of slots", arg) !== 1)
          notModelled("x", `${arg}: memvirt's VMM maps the test region with guest RAM's own memslots; run with -x 1`);
        break;
      default:
        return "help";
    }
  }
  if (p.iterations < 2) throw new SelftestAssert("The test should have at least two iterations");
  checkVcpuBytes(p.vcpuBytes);
  p.modes = guestModes(modeArgs);
  return p;
}

/** One iteration: its times, what the vCPUs wrote and what the log returned. */
export interface DirtyLogPerfIteration {
  dirtySeconds: number;
  getSeconds: number;
  /** null without manual protect (-g). */
  clearSeconds: number | null;
  /** Pages the vCPUs wrote. */
  written: number;
  /** Set bits KVM_GET_DIRTY_LOG returned for the test region. */
  harvested: number;
  /** Bits KVM_CLEAR_DIRTY_LOG cleared (re-protecting those pages). */
  cleared: number;
  /** KVM page faults the vCPUs took (pf_taken), and those fast_page_fault() fixed (pf_fast). */
  faults: number;
  fastFaults: number;
  /** Huge leaves (2 MiB + 1 GiB) mapped after the iteration's collection. */
  hugeLeaves: number;
}

export interface DirtyLogPerfRun {
  populateSeconds: number;
  enableSeconds: number;
  disableSeconds: number;
  iterations: DirtyLogPerfIteration[];
  /** Huge leaves mapped after populating, after enabling, after disabling. */
  hugeLeaves: { populated: number; enabled: number; disabled: number };
  /** The ioctls' work over the whole run (dirty_log_work.ts). */
  work: { sptesWrprot: number; hugeSplits: number; hugeRecovered: number; bitmapWords: number };
}

export interface DirtyLogPerfResult {
  lines: string[];
  /** Per guest mode. */
  runs: DirtyLogPerfRun[];
}

/** run_test() for each guest mode. */
export function runDirtyLogPerf(p: DirtyLogPerfParams, model: DirtyLogPerfModel = DEFAULT_DIRTY_LOG_MODEL): DirtyLogPerfResult {
  const res: DirtyLogPerfResult = { lines: [], runs: [] };
  for (const { mode, levels } of p.modes) {
    const ms = new Memstress({
      vcpus: p.vcpus,
      vcpuBytes: p.vcpuBytes,
      backing: p.src.backing,
      mmu: model.mmu,
      levels,
      partition: p.partition,
      seed: p.seed,
      thp: model.thp,
      ...(model.cost ? { cost: model.cost } : {}),
    });
    const pre = memstressPreamble(mode, ms.gpa, ms.size);
    if (res.runs.length === 0) res.lines.push(pre[0]!, `Test iterations: ${p.iterations}`);
    res.lines.push(...pre.slice(1));
    res.runs.push(new DirtyLogPerfTest(ms, p, model).run(res.lines));
  }
  return res;
}

/** The ioctl events KVM's dirty-log work adds up to (cost.ts names). */
type IoctlCounts = Record<string, number>;

class DirtyLogPerfTest {
  private readonly kvm: Kvm;
  /** The memslots holding the test region, and a bitmap for each (memstress_alloc_bitmaps()). */
  private readonly slots: Memslot[];
  private readonly bitmaps: Uint32Array[];
  private readonly firstGfn: number;
  private readonly endGfn: number;

  constructor(
    private readonly ms: Memstress,
    private readonly p: DirtyLogPerfParams,
    private readonly model: DirtyLogPerfModel,
  ) {
    this.kvm = ms.vm.qemu.kvm;
    this.kvm.eagerPageSplit = model.eagerPageSplit;
    this.firstGfn = ms.gpa / PAGE;
    this.endGfn = (ms.gpa + ms.size) / PAGE;
    this.slots = this.kvm.memslots.slots.filter((s) => s.baseGfn < this.endGfn && s.baseGfn + s.npages > this.firstGfn);
    this.bitmaps = this.slots.map((s) => new Uint32Array(dirtyBitmapWords(s.npages)));
  }

  run(lines: string[]): DirtyLogPerfRun {
    const { p, ms } = this;
    const sec = (cycles: number) => seconds(cycles, this.model.ghz);
    if (p.manualCaps !== 0) kvmEnableManualDirtyLogProtect(this.kvm, p.manualCaps);
    // Population: 100% writes, in order (dirty_log_perf_test.c's run_test()).
    const populateSeconds = sec(passCycles(ms.iteration(100, false)));
    lines.push(`Populate memory time: ${timespec(populateSeconds)}`);
    const populated = this.hugeLeaves();
    const enableSeconds = sec(this.ioctl(1, () => this.toggle(true)));
    lines.push(`Enabling dirty logging time: ${timespec(enableSeconds)}`, "");
    const enabled = this.hugeLeaves();
    const iterations: DirtyLogPerfIteration[] = [];
    for (let i = 1; i <= p.iterations; i++) iterations.push(this.iteration(i, lines));
    const disableSeconds = sec(this.ioctl(1, () => this.toggle(false)));
    lines.push(`Disabling dirty logging time: ${timespec(disableSeconds)}`);
    lines.push(
      this.total(
        "Get",
        iterations.map((it) => it.getSeconds),
      ),
    );
    if (p.manualCaps !== 0)
      lines.push(
        this.total(
          "Clear",
          iterations.map((it) => it.clearSeconds!),
        ),
      );
    const errors = ms.checkErrors();
    if (errors > 0) throw new Error(`the checker found ${errors} data errors or invariant violations`);
    const w = dirtyLogWork(this.kvm);
    return {
      populateSeconds,
      enableSeconds,
      disableSeconds,
      iterations,
      hugeLeaves: { populated, enabled, disabled: this.hugeLeaves() },
      work: { sptesWrprot: w.sptesWrprot, hugeSplits: w.hugeSplits, hugeRecovered: w.hugeRecovered, bitmapWords: w.bitmapWords },
    };
  }

  /** One host loop: the vCPUs dirty memory, then the log is collected (and cleared). */
  private iteration(i: number, lines: string[]): DirtyLogPerfIteration {
    const sec = (cycles: number) => seconds(cycles, this.model.ghz);
    const fast0 = this.fastFaults();
    const pass = this.ms.iteration(this.p.writePercent, this.p.random);
    const fastFaults = this.fastFaults() - fast0;
    const dirtySeconds = sec(passCycles(pass));
    lines.push(`Iteration ${i} dirty memory time: ${timespec(dirtySeconds)}`);
    let harvested = 0;
    const getSeconds = sec(this.ioctl(0, () => (harvested = this.getDirtyLog())));
    lines.push(`Iteration ${i} get dirty log time: ${timespec(getSeconds)}`);
    let clearSeconds: number | null = null;
    let cleared = 0;
    if (this.p.manualCaps !== 0) {
      clearSeconds = sec(this.ioctl(0, () => (cleared = this.clearDirtyLog())));
      lines.push(`Iteration ${i} clear dirty log time: ${timespec(clearSeconds)}`);
    }
    return {
      dirtySeconds,
      getSeconds,
      clearSeconds,
      written: pass.reduce((a, x) => a + x.writes, 0),
      harvested,
      cleared,
      faults: pass.reduce((a, x) => a + x.counts.kvm_page_fault!, 0),
      fastFaults,
      hugeLeaves: this.hugeLeaves(),
    };
  }

  private fastFaults(): number {
    return this.kvm.vcpus.reduce((a, v) => a + v.stats.pf_fast, 0);
  }

  /** memstress_enable_dirty_logging() / memstress_disable_dirty_logging(): the flags of each test slot. */
  private toggle(on: boolean): void {
    for (const s of this.slots) kvmSetMemslotFlags(this.kvm, s.id, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
  }

  /** memstress_get_dirty_log(): KVM_GET_DIRTY_LOG on each test slot; returns the set bits of the test region. */
  private getDirtyLog(): number {
    let region = 0;
    this.slots.forEach((s, k) => {
      const bm = this.bitmaps[k]!;
      this.kvm.stats.dirty_pages_harvested += kvmGetDirtyLog(this.kvm, s.id, bm);
      const [first, end] = this.regionIn(s);
      for (let b = first; b < end; b++) region += (bm[b >>> 5]! >>> (b & 31)) & 1;
    });
    return region;
  }

  /** memstress_clear_dirty_log(): KVM_CLEAR_DIRTY_LOG of the test region's pages (64-page aligned), from the bitmap just collected. */
  private clearDirtyLog(): number {
    let n = 0;
    this.slots.forEach((s, k) => {
      const [first, end] = this.regionIn(s);
      const from = first - (first % 64);
      const count = Math.min(s.npages - from, Math.ceil((end - from) / 64) * 64);
      n += kvmClearDirtyLog(this.kvm, s.id, from, count, this.bitmaps[k]!.subarray(from / 32));
    });
    return n;
  }

  /** The test region's pages in slot `s`, as slot offsets [first, end). */
  private regionIn(s: Memslot): [number, number] {
    return [Math.max(this.firstGfn, s.baseGfn) - s.baseGfn, Math.min(this.endGfn, s.baseGfn + s.npages) - s.baseGfn];
  }

  /**
   * Runs one host-side step (an ioctl on each test slot) and prices it from the work KVM did
   * meanwhile (cost.ts's dirty-log events); `memslotUpdates` 1 for KVM_SET_USER_MEMORY_REGION. Returns the cycles.
   */
  private ioctl(memslotUpdates: number, step: () => unknown): number {
    const w = dirtyLogWork(this.kvm);
    const before = { ...w };
    const flushes = this.kvm.stats.remote_tlb_flush_requests;
    step();
    const n = this.slots.length;
    const counts: IoctlCounts = {
      kvm_ioctl: n,
      memslot_update: memslotUpdates * n,
      spte_wrprot: w.sptesWrprot - before.sptesWrprot,
      huge_split: w.hugeSplits - before.hugeSplits,
      huge_recover: w.hugeRecovered - before.hugeRecovered,
      dirty_bitmap_word: w.bitmapWords - before.bitmapWords,
      kvm_flush_remote_tlbs: this.kvm.stats.remote_tlb_flush_requests - flushes,
    };
    return applyCost(this.ms.costs, counts).cycles;
  }

  private hugeLeaves(): number {
    return this.kvm.stats.pages_2m + this.kvm.stats.pages_1g;
  }

  /** The "... over N iterations took" line (timespec_add of each, then timespec_div). */
  private total(what: "Get" | "Clear", secs: number[]): string {
    const ns = secs.reduce((a, s) => a + Math.round(s * 1e9), 0);
    const avg = Math.floor(ns / this.p.iterations);
    return `${what} dirty log over ${this.p.iterations} iterations took ${timespec(ns / 1e9)}. (Avg ${timespec(avg / 1e9)}/iteration)`;
  }
}
