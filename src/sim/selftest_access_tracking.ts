// SPDX-License-Identifier: MIT
// access_tracking_perf_test (tools/testing/selftests/kvm/access_tracking_perf_test.c) on
// memvirt: populate, write and read the memory, then mark it idle through page_idle
// (host/page_idle.ts: the rmap, the PTE's young bit, mmu_notifier_clear_young -> KVM ages its
// sptes) and access it again; each stretch printed as "%-30s: %ld.%09lds".
//
// simplified: marking idle is priced as its three syscalls a page (pagemap pread, bitmap pread and pwrite) at SYSCALL_CYCLES
// plus the host's rmap-walk table reads at the cost model's table_read; the MGLRU path is not modelled.

import { PageIdle } from "../host/page_idle.js";
import { DEFAULT_MODEL, type ModelOptions } from "./selftest_demand_paging.js";
import { Memstress, passCycles, seconds } from "./selftest_memstress.js";
import {
  SelftestAssert,
  SelftestFailure,
  atoi,
  backingSrcHelp,
  checkVcpuBytes,
  getopt,
  guestModes,
  guestModesHelp,
  memstressPreamble,
  parseBackingSrc,
  parseSize,
} from "./selftest_options.js";

/** rough: a syscall round trip with the usual mitigations, ~100 ns at 3 GHz. */
export const SYSCALL_CYCLES = 300;
const PAGE = 4096;

export interface AccessTrackingParams {
  vcpus: number;
  vcpuBytes: number;
  overlap: boolean;
  modes: { mode: number; levels: 4 | 5 }[];
}

export function accessTrackingHelp(): string {
  return `
usage: access_tracking_perf_test [-h] [-m mode] [-b vcpu_bytes] [-v vcpus] [-o]  [-s mem_type]

 -h: Display this help message.${guestModesHelp()} -b: specify the size of the memory region which should be
     dirtied by each vCPU. e.g. 10M or 3G.
     (default: 1G)
 -v: specify the number of vCPUs to run.
 -o: Overlap guest memory accesses instead of partitioning
     them into a separate region of memory for each vCPU.
${backingSrcHelp("-s")}`;
}

export function parseAccessTracking(argv: readonly string[]): AccessTrackingParams | "help" {
  const p: AccessTrackingParams = { vcpus: 1, vcpuBytes: 2 ** 30, overlap: false, modes: [] };
  const modeArgs: string[] = [];
  for (const { opt, arg } of getopt(argv, "hm:b:v:os:")) {
    switch (opt) {
      case "m":
        modeArgs.push(arg);
        break;
      case "b":
        p.vcpuBytes = parseSize(arg);
        break;
      case "v":
        p.vcpus = atoi(arg);
        break;
      case "o":
        p.overlap = true;
        break;
      case "s": {
        const s = parseBackingSrc(arg);
        if (s.backing !== "4k")
          throw new SelftestAssert(
            `-s ${arg}: memvirt's page_idle walks 4 KiB folios only (a huge folio's tail pages have no rmap of their own here); use -s anonymous`,
            true,
          );
        break;
      }
      default:
        return "help";
    }
  }
  // vm_create_with_vcpus() with atoi()'s 0 or less fails in the library; memvirt says why.
  if (p.vcpus < 1 || p.vcpus > 64) throw new SelftestAssert(`-v ${p.vcpus}: a VM has 1 to 64 vCPUs in memvirt`, true);
  checkVcpuBytes(p.vcpuBytes);
  p.modes = guestModes(modeArgs);
  return p;
}

export interface AccessTrackingResult {
  lines: string[];
  /** Per stretch (in order): its name, seconds, and per vCPU the KVM page faults taken. */
  stretches: { name: string; seconds: number; faults: number[] }[];
  /** page_idle: folios walked, and those found young. */
  idle: { walked: number; referenced: number };
}

export function runAccessTracking(p: AccessTrackingParams, model: ModelOptions = DEFAULT_MODEL): AccessTrackingResult {
  const res: AccessTrackingResult = { lines: [], stretches: [], idle: { walked: 0, referenced: 0 } };
  for (const { mode, levels } of p.modes) {
    const ms = new Memstress({
      vcpus: p.vcpus,
      vcpuBytes: p.vcpuBytes,
      backing: "4k",
      mmu: model.mmu,
      levels,
      partition: !p.overlap,
      seed: 1,
      thp: model.thp,
      ...(model.cost ? { cost: model.cost } : {}),
    });
    const pageIdle = new PageIdle(ms.vm.qemu.host);
    res.lines.push(...memstressPreamble(mode, ms.gpa, ms.size), "");
    const stretch = (name: string, cycles: number, faults: number[]) => {
      const t = seconds(cycles, model.ghz);
      res.stretches.push({ name, seconds: t, faults });
      const ns = Math.round(t * 1e9);
      res.lines.push(`${name.padEnd(30)}: ${Math.floor(ns / 1e9)}.${String(ns % 1e9).padStart(9, "0")}s`);
    };
    const access = (name: string, writePercent: number) => {
      const pass = ms.iteration(writePercent, false);
      stretch(
        name,
        passCycles(pass),
        pass.map((x) => x.counts.kvm_page_fault!),
      );
    };
    const markIdle = () => {
      const cycles: number[] = [];
      for (let i = 0; i < p.vcpus; i++) cycles.push(markVcpuMemoryIdle(ms, pageIdle, i, p.overlap));
      stretch(
        "Mark memory idle",
        Math.max(...cycles),
        cycles.map(() => 0),
      );
    };
    access("Populating memory", 100);
    access("Writing to populated memory", 100);
    access("Reading from populated memory", 0);
    markIdle();
    access("Writing to idle memory", 100);
    markIdle();
    access("Reading from idle memory", 0);
    const errors = ms.checkErrors();
    if (errors > 0) throw new Error(`the checker found ${errors} data errors or invariant violations`);
    res.idle.walked += pageIdle.clearPteRefs;
    res.idle.referenced += pageIdle.referenced;
  }
  return res;
}

/** mark_vcpu_memory_idle(): per page, pagemap lookup, bitmap read, bitmap write; returns the cycles. */
function markVcpuMemoryIdle(ms: Memstress, pageIdle: PageIdle, i: number, overlap: boolean): number {
  // If vCPUs are using an overlapping region, let vCPU 0 mark it idle.
  if (overlap && i > 0) return 0;
  const host = ms.vm.qemu.host;
  const q = ms.vm.qemu;
  const reads = host.stat.rmap_walk_reads;
  let noPfn = 0;
  let stillIdle = 0;
  for (let page = 0; page < ms.pages; page++) {
    const gpa = ms.gpa + (ms.gva[i]! - ms.gva[0]!) + page * PAGE;
    const pr = host.probe(q.mm, q.gpaToHva(gpa));
    if (pr.state !== "present" || pr.zeroPage) {
      noPfn++;
      continue;
    }
    if (pageIdle.isIdle(pr.pfn)) {
      stillIdle++;
      continue;
    }
    pageIdle.markIdle(pr.pfn);
  }
  if (noPfn >= ms.pages / 100) throw new SelftestFailure(`vCPU ${i}: No PFN for ${noPfn} out of ${ms.pages} pages.`);
  if (stillIdle >= ms.pages / 10) throw new SelftestFailure(`vCPU${i}: Too many pages still idle (${stillIdle} out of ${ms.pages}).`);
  return ms.pages * 3 * SYSCALL_CYCLES + (host.stat.rmap_walk_reads - reads) * ms.costs.table_read!;
}
