// SPDX-License-Identifier: MIT
// The memstress library of KVM's selftests (tools/testing/selftests/kvm/lib/memstress.c) on
// memvirt: memstress_create_vm() as a guest without a kernel whose VMM maps the test region
// (virt_map) before the run, and memstress_guest_code(), each vCPU touching every page of its
// slice once per iteration (a write with probability write_percent), then GUEST_SYNC. The
// drivers (selftest_demand_paging.ts, ...) time these passes in model time: each vCPU's
// cycles from its own counters under the cost model, a pass lasting as long as its slowest vCPU.
//
// simplified: the vCPUs run in turn, CHUNK pages at a time, not in parallel; their counts are those of a parallel run
// without lock contention (mmu_lock, mmap_lock are not modelled), and -o's shared pages fault on whichever vCPU comes first.
// simplified: the guest's loop over memstress_args (a few reads per iteration) and its code pages are not modelled.
// simplified: the backing source backs all guest RAM (in the real test only the test memslots; slot 0 is anonymous).

import type { Vcpu } from "../kvm/kvm.js";
import { hwDataAccesses } from "../hw/mmu_stats.js";
import type { Backing } from "../qemu/vm.js";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { Prng } from "../workload/prng.js";
import { applyCost, costTable, type CostTable } from "./cost.js";
import { Machine, type ProcState, type VmState } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

/** DEFAULT_GUEST_TEST_MEM: the gva of the test region. */
export const GUEST_TEST_MEM = 0xc0000000;
/** Guest pages a vCPU runs before the next vCPU's turn. */
export const CHUNK = 64;
const PAGE = 4096;

export interface MemstressConfig {
  vcpus: number;
  /** Bytes each vCPU touches (-b). */
  vcpuBytes: number;
  backing: Backing;
  mmu: "ept" | "npt" | "shadow";
  /** Guest paging levels: 4 (mode PXXV48_4K) or 5 (PXXV57_4K). */
  levels: 4 | 5;
  /** false with -o: every vCPU touches the whole region. */
  partition: boolean;
  /** memstress_args.random_seed (guest_random_seed). */
  seed: number;
  /** Host THP policy ("madvise" makes only anonymous_thp's region huge). */
  thp: "never" | "madvise" | "always";
  /** Cost-model overrides (cost.ts names). */
  cost?: Record<string, number>;
}

/** What one vCPU's pass counted, in cost-model events (cost_counts.ts names). */
type Counts = Record<string, number>;

const ALIGN = 2 ** 30;

/** The scenario memstress_create_vm() builds: one VM, one region at the top of guest RAM, a process per vCPU. */
export function memstressScenarioYaml(c: MemstressConfig): string {
  const total = c.vcpus * c.vcpuBytes;
  const step = c.backing === "hugetlb-1g" ? ALIGN : 2 ** 21;
  // The region at the top of RAM, the VMM's tables below it (virt_map: from 0x180000).
  const ram = Math.ceil((total + 0x180000 + 2 * 2 ** 21 + (total / 512 / PAGE + 16) * PAGE) / step) * step;
  const hostRam = Math.ceil((ram + 64 * 2 ** 20) / ALIGN) * ALIGN;
  const procs = Array.from({ length: c.vcpus }, (_, i) => `      - {name: vcpu${i}, vcpu: ${i}, steps: [{exit: {}}]}`).join("\n");
  return `
seed: ${c.seed}
host: {ram: ${hostRam}, swap: 0, thp: ${c.thp}}
vms:
  - name: vm0
    ram: ${ram}
    vcpus: ${c.vcpus}
    mmu: ${c.mmu}
    backing: ${c.backing}
    guest:
      kernel: none
      levels: ${c.levels}
      spaces:
        - name: s0
          regions:
            - {name: test_mem, gva: ${GUEST_TEST_MEM}, size: ${total}, page: 4k, cpl: 0}
    processes:
${procs}
`;
}

/** A vCPU's cost-model events so far (vmCostCounts for one vCPU; host faults as attributed by Memstress). */
function vcpuCounts(v: Vcpu, hostFaults: number): Counts {
  const h = v.mmu.stats;
  return {
    tlb_hit: h.tlbHits,
    table_read: h.guestTableReads + h.nestedTableReads,
    data_access: hwDataAccesses(h),
    vm_exit: v.stats.exits,
    kvm_page_fault: v.stats.pf_taken,
    host_fault: hostFaults,
    tlb_flush: v.stats.tlb_flush,
    gpte_access: v.stats.gpte_reads + v.stats.gpte_writes,
    emulate: v.stats.pf_emulate,
  };
}

function minus(a: Counts, b: Counts): Counts {
  const out: Counts = {};
  for (const k of Object.keys(a)) out[k] = a[k]! - (b[k] ?? 0);
  return out;
}

/** One vCPU's pass: its cycles and the events they come from. */
export interface VcpuPass {
  cycles: number;
  counts: Counts;
  /** Pages the guest wrote in the pass. */
  writes: number;
}

export class Memstress {
  readonly machine: Machine;
  readonly vm: VmState;
  readonly costs: CostTable;
  /** Per vCPU: first gva of its slice and its pages (memstress_vcpu_args). */
  readonly gva: number[] = [];
  readonly pages: number;
  /** Guest-physical address of the test region (memstress_args.gpa). */
  readonly gpa: number;
  readonly size: number;
  private readonly procs: ProcState[];
  /** Host faults on QEMU's mm taken while each vCPU ran. */
  private readonly hostFaults: Float64Array;
  private readonly rng: Prng[];

  constructor(readonly cfg: MemstressConfig) {
    const scenario = loadScenario(memstressScenarioYaml(cfg), "memstress.yaml");
    this.machine = new Machine(scenario, undefined, { native: false });
    this.vm = this.machine.vms[0]!;
    this.costs = costTable(cfg.cost ?? {});
    this.procs = this.vm.procs;
    this.pages = cfg.partition ? cfg.vcpuBytes / PAGE : (cfg.vcpus * cfg.vcpuBytes) / PAGE;
    for (let i = 0; i < cfg.vcpus; i++) this.gva.push(GUEST_TEST_MEM + (cfg.partition ? i * cfg.vcpuBytes : 0));
    const r = this.vm.virtMap!.spaces[0]!.regions[0]!;
    this.gpa = r.gpa;
    this.size = r.size;
    this.hostFaults = new Float64Array(cfg.vcpus);
    // new_guest_random_state(args->random_seed + vcpu_idx)
    this.rng = this.procs.map((_, i) => Prng.derive(cfg.seed + i, "memstress"));
    for (const p of this.procs) p.user = false;
  }

  /** The vCPUs' events so far. */
  counts(): Counts[] {
    return this.vm.qemu.kvm.vcpus.map((v, i) => {
      const c = vcpuCounts(v, this.hostFaults[i]!);
      if (this.extra !== null) c[this.extra.name] = this.extra.perVcpu[i]!;
      return c;
    });
  }

  /** A cost event of the host's (cost.ts name) the vCPUs cause, read as a running total and attributed to the vCPU whose turn it was. */
  private extra: { name: string; read: () => number; perVcpu: Float64Array } | null = null;

  attributeToVcpus(name: string, read: () => number): void {
    this.extra = { name, read, perVcpu: new Float64Array(this.cfg.vcpus) };
  }

  /**
   * One iteration of memstress_guest_code() on every vCPU, then GUEST_SYNC (a ucall exit), the
   * vCPUs interleaved CHUNK pages at a time. Returns each vCPU's pass.
   */
  iteration(writePercent: number, random: boolean): VcpuPass[] {
    const n = this.cfg.vcpus;
    const before = this.counts();
    const writes = new Array<number>(n).fill(0);
    const mm = this.vm.qemu.mm;
    for (let start = 0; start < this.pages; start += CHUNK) {
      const end = Math.min(this.pages, start + CHUNK);
      for (let i = 0; i < n; i++) {
        const faults = mm.minFlt + mm.majFlt;
        const extra = this.extra?.read() ?? 0;
        writes[i]! += this.run(i, start, end, writePercent, random);
        this.hostFaults[i]! += mm.minFlt + mm.majFlt - faults;
        if (this.extra !== null) this.extra.perVcpu[i]! += this.extra.read() - extra;
      }
    }
    for (let i = 0; i < n; i++) this.vm.selftest!.ucall(i);
    const after = this.counts();
    return after.map((a, i) => {
      const counts = minus(a, before[i]!);
      return { cycles: applyCost(this.costs, counts).cycles, counts, writes: writes[i]! };
    });
  }

  /** Pages [start, end) of vCPU `i`'s loop; returns the writes. */
  private run(i: number, start: number, end: number, writePercent: number, random: boolean): number {
    const ps = this.procs[i]!;
    const rng = this.rng[i]!;
    const base = this.gva[i]!;
    let writes = 0;
    for (let k = start; k < end; k++) {
      const page = random ? rng.nextInt(this.pages) : k;
      // guest_random_u32(&rand_state) % 100 < write_percent
      const write = writePercent >= 100 || (writePercent > 0 && rng.nextInt(100) < writePercent);
      this.machine.runAccess(ps, base + page * PAGE, write ? OP_WRITE : OP_READ);
      if (write) writes++;
    }
    return writes;
  }

  /** Data errors and invariant violations the checker found so far. */
  checkErrors(): number {
    const c = this.machine.checker;
    c.checkStructures();
    return c.dataErrors + c.invariantViolations;
  }
}

/** Seconds of `cycles` at `ghz`. */
export const seconds = (cycles: number, ghz: number) => cycles / (ghz * 1e9);

/** A pass's time: its slowest vCPU's. */
export const passCycles = (p: readonly VcpuPass[]) => Math.max(0, ...p.map((x) => x.cycles));

/** "%ld.%.9lds" of a timespec. */
export function timespec(sec: number): string {
  const ns = Math.round(sec * 1e9);
  return `${Math.floor(ns / 1e9)}.${String(ns % 1e9).padStart(9, "0")}s`;
}
