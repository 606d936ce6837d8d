// SPDX-License-Identifier: MIT
// demand_paging_test (tools/testing/selftests/kvm/demand_paging_test.c) on memvirt: every vCPU
// writes each page of its slice once, on memory nobody touched, and the test prints the time
// until all vCPU threads joined and the paging rate. Without -u the faults are KVM's and the
// host's own; with -u MISSING each first touch is handed to a userfaultfd reader that places the
// page with UFFDIO_COPY (selftest_uffd.ts).

import type { Backing } from "../qemu/vm.js";
import { Memstress, passCycles, seconds, timespec, type VcpuPass } from "./selftest_memstress.js";
import {
  SelftestAssert,
  atoi,
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
import { MAX_VCPUS } from "./scenario_limits.js";
import { setupDemandPaging } from "./selftest_uffd.js";

/** What memvirt adds to the real options: the MMU, the clock, cost overrides. */
export interface ModelOptions {
  mmu: "ept" | "npt" | "shadow";
  ghz: number;
  thp: "never" | "madvise" | "always";
  cost?: Record<string, number>;
}

export const DEFAULT_MODEL: ModelOptions = { mmu: "ept", ghz: 3, thp: "madvise" };

export interface DemandPagingParams {
  vcpus: number;
  vcpuBytes: number;
  src: { name: string; backing: Backing };
  partition: boolean;
  modes: { mode: number; levels: 4 | 5 }[];
  /** -u MISSING. */
  uffd: boolean;
  /** -a, or -o: one uffd for all of the test region. */
  singleUffd: boolean;
  /** -d: the handler's usleep() before each UFFDIO_COPY, in microseconds. */
  uffdDelayUs: number;
  /** -w: KVM_CAP_EXIT_ON_MISSING memory fault exits. */
  memfaultExits: boolean;
}

export const DEMAND_PAGING_OPTSTRING = "ahowm:u:d:b:s:v:c:r:";

export function demandPagingHelp(): string {
  return `
usage: demand_paging_test [-h] [-m vm_mode] [-u uffd_mode] [-a]
          [-d uffd_delay_usec] [-r readers_per_uffd] [-b memory]
          [-s type] [-v vcpus] [-c cpu_list] [-o] [-w] 
${guestModesHelp()} -u: use userfaultfd to handle vCPU page faults. Mode is a
     UFFD registration mode: 'MISSING' or 'MINOR'.
     (memvirt: MISSING on anonymous memory; MINOR needs shared memory, refused)
 -a: Use a single userfaultfd for all of guest memory, instead of
     creating one for each region paged by a unique vCPU
     Set implicitly with -o, and no effect without -u.
 -d: add a delay in usec to the User Fault
     FD handler to simulate demand paging
     overheads. Ignored without -u.
 -r: Set the number of reader threads per uffd.
 -w: Enable kvm cap for memory fault exits.
 -b: specify the size of the memory region which should be
     demand paged by each vCPU. e.g. 10M or 3G.
     Default: 1G
${backingSrcHelp("-s")} -v: specify the number of vCPUs to run.
 -o: Overlap guest memory accesses instead of partitioning
     them into a separate region of memory for each vCPU.
`;
}

/** main()'s option loop and checks; "help" for -h. */
export function parseDemandPaging(argv: readonly string[]): DemandPagingParams | "help" {
  const p: DemandPagingParams = {
    vcpus: 1,
    vcpuBytes: 2 ** 30,
    src: { name: "anonymous", backing: "4k" },
    partition: true,
    modes: [],
    uffd: false,
    singleUffd: false,
    uffdDelayUs: 0,
    memfaultExits: false,
  };
  const modeArgs: string[] = [];
  let minor = false;
  for (const { opt, arg } of getopt(argv, DEMAND_PAGING_OPTSTRING)) {
    switch (opt) {
      case "m":
        modeArgs.push(arg);
        break;
      case "u":
        if (arg !== "MISSING" && arg !== "MINOR") throw new SelftestAssert("UFFD mode must be 'MISSING' or 'MINOR'.");
        // memvirt backs no shared memory (shmem, shared_hugetlb), so MINOR always meets the test's own check.
        if (arg === "MINOR") minor = true;
        p.uffd = true;
        break;
      case "d":
        // strtoul(): a leading '-' negates, so the delay is never negative.
        p.uffdDelayUs = Math.abs(atoi(arg));
        break;
      case "a":
        p.singleUffd = true;
        break;
      case "w":
        p.memfaultExits = true;
        break;
      case "r":
        if (atoi(arg) < 1) throw new SelftestAssert(`Invalid number of readers per uffd ${atoi(arg)}: must be >=1`);
        break;
      case "c":
        throw new SelftestAssert(`-c ${arg}: memvirt does not model host CPUs, so vCPU threads cannot be pinned; run without -c`, true);
      case "b":
        p.vcpuBytes = parseSize(arg);
        break;
      case "s":
        p.src = parseBackingSrc(arg);
        break;
      case "v":
        p.vcpus = atoiPositive("Number of vCPUs", arg);
        checkVcpus(p.vcpus, MAX_VCPUS);
        break;
      case "o":
        p.partition = false;
        p.singleUffd = true;
        break;
      default:
        return "help";
    }
  }
  if (minor) throw new SelftestAssert("userfaultfd MINOR mode requires shared memory; pick a different -s");
  if (p.uffd && p.memfaultExits)
    throw new SelftestAssert(
      "-u with -w: memvirt's KVM has no KVM_CAP_EXIT_ON_MISSING, so vCPUs cannot exit to resolve their own faults; run without -w",
      true,
    );
  if (p.uffd && p.src.backing !== "4k")
    throw new SelftestAssert(
      `-u with -s ${p.src.name}: memvirt's UFFDIO_REGISTER takes 4 KiB anonymous memory only; use -s anonymous`,
      true,
    );
  checkVcpuBytes(p.vcpuBytes);
  p.modes = guestModes(modeArgs);
  return p;
}

export interface DemandPagingResult {
  lines: string[];
  /** Per guest mode: each vCPU's pass. */
  passes: VcpuPass[][];
  /** Per guest mode: the execution time in seconds. */
  seconds: number[];
  /** Per guest mode with -u: faults handed to the uffd readers, and pages their UFFDIO_COPY placed. */
  uffd: { faults: number; copies: number }[];
}

/** run_test() for each guest mode. */
export function runDemandPaging(p: DemandPagingParams, model: ModelOptions = DEFAULT_MODEL): DemandPagingResult {
  const out: DemandPagingResult = { lines: [], passes: [], seconds: [], uffd: [] };
  for (const { mode, levels } of p.modes) {
    const ms = new Memstress({
      vcpus: p.vcpus,
      vcpuBytes: p.vcpuBytes,
      backing: p.src.backing,
      mmu: model.mmu,
      levels,
      partition: p.partition,
      seed: 1,
      thp: model.thp,
      ...(model.cost ? { cost: model.cost } : {}),
    });
    out.lines.push(...memstressPreamble(mode, ms.gpa, ms.size));
    const uffd = p.uffd ? setupDemandPaging(ms, p.singleUffd) : null;
    out.lines.push("Finished creating vCPUs and starting uffd threads", "Started all vCPUs");
    // memstress_create_vm(): args->write_percent = 100.
    const pass = ms.iteration(100, false);
    // -d: the reader's usleep(delay) before each UFFDIO_COPY, which the faulting vCPU waits out.
    if (uffd !== null) for (const x of pass) x.cycles += (x.counts.userfault ?? 0) * p.uffdDelayUs * 1e3 * model.ghz;
    if (uffd !== null) out.uffd.push({ faults: uffd.faults(), copies: uffd.ctxs.reduce((a, c) => a + c.stats.uffd_copy, 0) });
    const errors = ms.checkErrors();
    if (errors > 0) throw new Error(`the checker found ${errors} data errors or invariant violations`);
    const t = seconds(passCycles(pass), model.ghz);
    out.lines.push("All vCPU threads joined", `Total guest execution time:\t${timespec(t)}`);
    const rate = ms.pages / t;
    out.lines.push(`Per-vcpu demand paging rate:\t${rate.toFixed(6)} pgs/sec/vcpu`);
    out.lines.push(`Overall demand paging rate:\t${(rate * p.vcpus).toFixed(6)} pgs/sec`);
    out.passes.push(pass);
    out.seconds.push(t);
  }
  return out;
}
