// SPDX-License-Identifier: MIT
// Shadow paging end to end (SEED-PATHS.md path 2) and side by side with EPT/NPT: the same
// scenarios run through host, QEMU, KVM's shadow MMU and the guest kernel, with the counts
// Linux and the hardware define, and the same guest-visible results under every MMU mode.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import type { SimEvent } from "../hw/events.js";
import { ACC_USER, XLATE_OK } from "../hw/mmu.js";
import { REF_DATA, REF_NESTED_TABLE, WalkLog } from "../hw/walk_log.js";
import { PFERR_USER, PFERR_WRITE } from "../hw/x86_pte.js";
import type { Vcpu } from "../kvm/kvm.js";
import { ShadowMmu } from "../kvm/shadow_mmu.js";
import type { ShadowVcpuMmu } from "../kvm/shadow_vcpu.js";
import { ShadowPagingVcpuMmu } from "../kvm/vcpu_mmu.js";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { Engine } from "./engine.js";
import { Machine } from "./machine.js";
import type { Report } from "./report.js";
import { loadScenario } from "./scenario_load.js";

const MiB = 2 ** 20;

function vmYaml(o: {
  mmu: string;
  ram?: string;
  backing?: string;
  hostRam?: string;
  swap?: string;
  levels?: number;
  vcpus?: number;
  procs: Record<string, string[]>;
  seed?: number;
}) {
  const procs = Object.entries(o.procs)
    .map(([name, steps]) =>
      steps.length === 0
        ? `      - name: ${name}\n        steps: []`
        : `      - name: ${name}\n        steps:\n${steps.map((s) => `          - ${s}`).join("\n")}`,
    )
    .join("\n");
  return `
seed: ${o.seed ?? 7}
host: {ram: ${o.hostRam ?? "2GiB"}, swap: ${o.swap ?? "0"}, thp: never}
vms:
  - name: vm0
    ram: ${o.ram ?? "512MiB"}
    vcpus: ${o.vcpus ?? 1}
    mmu: ${o.mmu}
    backing: ${o.backing ?? "4k"}
    guest: {levels: ${o.levels ?? 4}}
    processes:
${procs}
`;
}

function machine(yaml: string): Machine {
  const m = new Machine(loadScenario(yaml, "shadow.yaml"));
  m.checker.checkShadowWalks = true;
  return m;
}

function run(yaml: string): { r: Report; e: Engine } {
  const e = new Engine(loadScenario(yaml, "shadow.yaml"));
  e.machine.checker.checkShadowWalks = true;
  return { r: e.run(), e };
}

const stat = (r: Report, k: string) => r.vms[0]!.stats[k] ?? 0;
function shadowOf(e: Engine | Machine): ShadowMmu {
  const mmu = ("machine" in e ? e.machine : e).vms[0]!.qemu.kvm.mmu;
  if (!(mmu instanceof ShadowMmu)) throw new Error("the VM does not run the shadow MMU");
  return mmu;
}

function shadowVcpu(v: Vcpu): ShadowVcpuMmu {
  if (!(v.archMmu instanceof ShadowPagingVcpuMmu)) throw new Error(`vCPU ${v.id} does not run shadow paging`);
  return v.archMmu.shadow;
}

describe("a TLB miss: the hardware walks the shadow tables one-dimensionally", () => {
  for (const [mmu, reads, flushedReads] of [
    ["shadow", 4, 4],
    ["ept", 24, 12],
    ["npt", 24, 12],
  ] as const) {
    test(`${mmu}: a cold miss reads ${reads} table entries; after a full flush the hardware reads ${flushedReads} (its caches refill within the walk); no exit`, () => {
      const m = machine(vmYaml({ mmu, procs: { p0: [] } }));
      const vm = m.vms[0]!;
      const ps = vm.procs[0]!;
      vm.contextSwitch(ps.proc, 0);
      const gva = vm.mmap(ps.proc, "heap", 16 * PAGE_SIZE);
      m.runAccess(ps, gva, OP_WRITE);
      const v = vm.qemu.kvm.vcpus[0]!;
      // The architectural walk, no TLB or paging-structure cache at all (probe() uses none).
      const log = new WalkLog();
      v.mmu.log = log;
      expect(v.mmu.probe(gva, ACC_USER)).toBe(XLATE_OK);
      v.mmu.log = null;
      const kinds = log.steps.map((st) => st.kind);
      expect(kinds.filter((k) => k !== REF_DATA)).toHaveLength(reads);
      expect(kinds.filter((k) => k === REF_NESTED_TABLE)).toHaveLength(reads - 4);
      // The hardware after INVVPID/INVEPT of everything.
      v.mmu.invvpid(2, v.mmu.vpid);
      if (mmu !== "shadow") v.mmu.invept(2);
      const h = v.mmu.stats;
      const reads0 = h.guestTableReads + h.nestedTableReads;
      const exits0 = v.stats.exits;
      m.runAccess(ps, gva, OP_READ);
      expect(h.guestTableReads + h.nestedTableReads - reads0).toBe(flushedReads);
      expect(v.stats.exits).toBe(exits0);
      expect(m.checker.dataErrors + m.checker.invariantViolations).toBe(0);
    });
  }

  test("TLB-miss heavy (uniform random over 64 MiB, few table edits): shadow walks read 4 entries at most and cost fewer cycles per miss than EPT", () => {
    const procs = {
      p0: ["mmap: {name: heap, size: 64MiB}", "touch: {name: heap, op: write}", "random: {name: heap, accesses: 40000, writeRatio: 0.2}"],
    };
    const sh = run(vmYaml({ mmu: "shadow", procs })).r;
    const ept = run(vmYaml({ mmu: "ept", procs })).r;
    const perWalk = (r: Report) => r.vms[0]!.hw.tableReadsPerWalk;
    const cyclesPerMiss = (r: Report) => r.vms[0]!.cost.breakdown.table_read! / r.vms[0]!.hw.walks;
    expect(perWalk(sh)).toBeLessThanOrEqual(4);
    expect(perWalk(ept)).toBeGreaterThan(perWalk(sh));
    expect(cyclesPerMiss(sh)).toBeLessThan(cyclesPerMiss(ept));
    expect(sh.check.dataErrors + ept.check.dataErrors).toBe(0);
    expect(sh.check.readDigest).toBe(ept.check.readDigest);
  });
});

describe("a page-table-heavy workload: every guest table edit goes through KVM", () => {
  const heavy = (mmu: string, iterations: number) =>
    vmYaml({
      mmu,
      procs: Object.fromEntries(
        ["a", "b", "c"].map((n) => [
          n,
          [
            `mmapChurn: {iterations: ${iterations}, size: 1MiB, touch: 32}`,
            "processChurn: {count: 10, size: 256KiB}",
            "mmap: {name: heap, size: 4MiB}",
            "random: {name: heap, accesses: 6000, writeRatio: 0.5}",
          ],
        ]),
      ),
    });

  test("three processes with mmap/munmap and fork/exit churn and CR3 switches: shadow takes many times the exits of EPT, of every kind", () => {
    const { r: sh, e: shE } = run(heavy("shadow", 50));
    const ept = run(heavy("ept", 50)).r;
    const exits = (r: Report) => stat(r, "exits");
    // Measured: shadow 25,424 exits (23,815 #PF, 1,362 INVLPG, 247 CR_ACCESS) against EPT's 2,909 EPT violations.
    expect(exits(sh)).toBeGreaterThan(6 * exits(ept));
    const reasons = sh.vms[0]!.vcpus[0]!.exitReasons;
    expect(Object.keys(reasons).sort()).toEqual(["CR_ACCESS", "EXCEPTION_NMI", "INVLPG"]);
    expect(Object.keys(ept.vms[0]!.vcpus[0]!.exitReasons)).toEqual(["EPT_VIOLATION"]);
    // Every CR3 write the guest made exited (switch_mm and full flushes).
    expect(reasons.CR_ACCESS).toBeGreaterThanOrEqual(sh.vms[0]!.guest.cr3Loads!);
    // Every #PF the guest handled was first KVM's, and reflected.
    expect(stat(sh, "pf_guest")).toBe(sh.vms[0]!.guest.pgfault);
    expect(stat(ept, "pf_guest")).toBe(0);
    for (const k of ["pf_emulate", "mmu_pte_write", "mmu_unsync", "invlpg", "tlb_flush"]) expect(stat(ept, k)).toBe(0);
    expect(stat(sh, "pf_emulate")).toBeGreaterThan(0);
    // Same guest, same results.
    expect(shadowOf(shE).checkInvariants()).toEqual([]);
    expect(sh.check).toEqual(ept.check);
    expect(sh.check.dataErrors + sh.check.invariantViolations).toBe(0);
    expect(sh.vms[0]!.guest).toEqual(ept.vms[0]!.guest);
  });

  test("mmu_pte_write grows with the guest's table edits, and never exceeds them", () => {
    const small = run(heavy("shadow", 20)).r;
    const big = run(heavy("shadow", 60)).r;
    expect(big.vms[0]!.guest.pteWrites).toBeGreaterThan(small.vms[0]!.guest.pteWrites!);
    expect(stat(big, "mmu_pte_write")).toBeGreaterThan(stat(small, "mmu_pte_write") + 100);
    for (const r of [small, big]) expect(stat(r, "mmu_pte_write")).toBeLessThan(r.vms[0]!.guest.pteWrites!);
  });
});

describe("guest table edits under shadow paging", () => {
  function started(yaml = vmYaml({ mmu: "shadow", procs: { p0: [] } })) {
    const m = machine(yaml);
    const vm = m.vms[0]!;
    const ps = vm.procs[0]!;
    vm.contextSwitch(ps.proc, 0);
    return { m, vm, ps, kvm: vm.qemu.kvm, s: () => vm.qemu.kvm.statsWithVcpus() };
  }

  test("the guest fills one upper-level table three times without using it: write flooding zaps its shadow page", () => {
    const { m, vm, ps, s } = started();
    const gva = vm.mmap(ps.proc, "heap", 8 * MiB);
    m.runAccess(ps, gva, OP_WRITE); // the PMD page is shadowed and write-tracked now
    const a = s();
    // The kernel prefaults three more 2 MiB regions (as MAP_POPULATE would): three PMD writes, no access in between.
    for (let i = 1; i <= 3; i++) expect(vm.guest.handlePageFault(ps.proc, gva + i * 2 * MiB, PFERR_WRITE | PFERR_USER, 0)).toBe("fixed");
    const d = (k: string) => s()[k]! - a[k]!;
    expect(d("mmu_pte_write")).toBe(3);
    expect(d("mmu_flooded")).toBe(1);
    expect(d("mmu_shadow_zapped")).toBeGreaterThanOrEqual(1);
    expect(shadowOf(m).track.trackedFrames).toBe(a.n_used_mmu_pages! - 2); // PGD and PUD still tracked; the PMD not; the PT is a leaf
    // Everything still reads back through a rebuilt shadow path.
    for (let i = 0; i <= 3; i++) m.runAccess(ps, gva + i * 2 * MiB, OP_READ);
    expect(m.checker.dataErrors + m.checker.invariantViolations).toBe(0);
  });

  test("edit then use: a zero-page read, then copy-on-write, then munmap and a new mmap at the same address — never the stale mapping", () => {
    const { m, vm, ps, s } = started();
    const gva = vm.mmap(ps.proc, "a", 64 * PAGE_SIZE);
    for (let i = 0; i < 64; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ); // the guest maps its zero page
    const a = s();
    for (let i = 0; i < 64; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE); // wp_page_copy(): clear, INVLPG, set
    expect(s().invlpg! - a.invlpg!).toBe(64);
    for (let i = 0; i < 64; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
    vm.munmap(ps.proc, gva, 64 * PAGE_SIZE, 0);
    const again = vm.mmap(ps.proc, "b", 64 * PAGE_SIZE);
    expect(again).toBe(gva);
    for (let i = 0; i < 64; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ); // fresh zero pages, not the old data
    for (let i = 0; i < 64; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
    for (let i = 0; i < 64; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
    expect(m.checker.valuesRead).toBe(4 * 64);
    expect(m.checker.dataErrors).toBe(0);
    expect(m.checker.invariantViolations).toBe(0);
  });

  test("two processes switching CR3 back and forth reuse their cached roots: no root is built after the first round", () => {
    const procs = {
      a: ["mmap: {name: heap, size: 2MiB}", "random: {name: heap, accesses: 40000, writeRatio: 0.5}"],
      b: ["mmap: {name: heap, size: 2MiB}", "random: {name: heap, accesses: 40000, writeRatio: 0.5}"],
    };
    const { r, e } = run(vmYaml({ mmu: "shadow", procs }));
    const ctxt = r.vms[0]!.guest.ctxt!;
    expect(ctxt).toBeGreaterThan(15); // a time slice is 4096 accesses
    // Roots: the guest's boot page table and one per process, each built once.
    expect(stat(r, "mmu_root_loads")).toBe(3);
    // Every later switch found its root in prev_roots (fast_pgd_switch) without a flush.
    expect(stat(r, "fast_pgd_switch")).toBe(ctxt - 2);
    const v = e.machine.vms[0]!.qemu.kvm.vcpus[0]!;
    expect(
      shadowVcpu(v)
        .roots()
        .map((x) => x.sp!.gfn)
        .sort(),
    ).toEqual([...e.machine.vms[0]!.procs.map((p) => p.proc.pgd), e.machine.vms[0]!.guest.initMm.pgd].sort());
    expect(r.check.dataErrors).toBe(0);
  });
});

describe("host reclaim under shadow paging (paths 5 and 6)", () => {
  test("an invalidation between kvm_faultin_pfn() and the install makes the shadow fault retry; the data is intact", () => {
    const m = machine(vmYaml({ mmu: "shadow", procs: { p0: [] } }));
    const vm = m.vms[0]!;
    const kvm = vm.qemu.kvm;
    const ps = vm.procs[0]!;
    vm.contextSwitch(ps.proc, 0);
    const gva = vm.mmap(ps.proc, "heap", 16 * PAGE_SIZE);
    m.runAccess(ps, gva, OP_WRITE);
    m.runAccess(ps, gva + PAGE_SIZE, OP_READ); // the guest maps its zero page there
    let fired = 0;
    kvm.racePoint = (_v, point, gfn) => {
      if (point === "after-faultin" && fired++ === 0) vm.qemu.madvise(gfn * PAGE_SIZE, PAGE_SIZE, "DONTNEED");
    };
    const before = kvm.statsWithVcpus();
    m.runAccess(ps, gva, OP_READ); // the spte is there: no fault, no race
    expect(fired).toBe(0);
    m.runAccess(ps, gva + 2 * PAGE_SIZE, OP_WRITE);
    kvm.racePoint = null;
    expect(fired).toBeGreaterThan(0);
    const s = kvm.statsWithVcpus();
    expect(s.mmu_fault_retries! - before.mmu_fault_retries!).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
    expect(m.checker.dataErrors + m.checker.invariantViolations).toBe(0);
    expect(m.checker.checkStaleMappings()).toBe(0);
    expect(shadowOf(m).checkInvariants()).toEqual([]);
  });

  test("64 MiB host, 256 MiB swap: the notifier zaps the spte of every evicted guest page first; 128 MiB written reads back", () => {
    const m = machine(vmYaml({ mmu: "shadow", hostRam: "64MiB", swap: "256MiB", ram: "256MiB", procs: { p0: [] } }));
    const events: SimEvent[] = [];
    m.bus.listen((e) => {
      if (e.kind === "host.unmap" || e.kind === "kvm.notifier_zap") events.push(e);
    });
    const vm = m.vms[0]!;
    const ps = vm.procs[0]!;
    vm.contextSwitch(ps.proc, 0);
    const pages = (128 * MiB) / PAGE_SIZE;
    const gva = vm.mmap(ps.proc, "heap", pages * PAGE_SIZE);
    for (let i = 0; i < pages; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
    for (let i = 0; i < pages; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
    const v = m.host.vmstat();
    expect(m.checker.dataErrors).toBe(0);
    expect(m.checker.invariantViolations).toBe(0);
    expect(v.pswpout).toBeGreaterThan(pages / 2);
    expect(v.pswpin).toBeGreaterThan(pages / 4);
    // Each unmap by reclaim is preceded by KVM's zap of that page's range; data pages had their one spte.
    let unmaps = 0;
    let dataZaps = 0;
    for (let i = 0; i < events.length; i++) {
      if (events[i]!.kind !== "host.unmap") continue;
      unmaps++;
      const zap = events[i - 1]!;
      expect(zap.kind).toBe("kvm.notifier_zap");
      expect(zap.start).toBe(events[i]!.hva);
      if (zap.zapped === 1) dataZaps++;
      expect(zap.zapped).toBeLessThanOrEqual(1);
    }
    expect(unmaps).toBeGreaterThan(pages / 2);
    expect(dataZaps).toBeGreaterThan(pages / 2);
    // No shadow leaf outlives its host mapping.
    expect(m.checker.checkStaleMappings()).toBe(0);
    expect(shadowOf(m).checkInvariants()).toEqual([]);
  });
});

describe("side by side: the same scenario and seed under shadow, EPT and NPT", () => {
  const steps = [
    "mmap: {name: heap, size: 48MiB}",
    "random: {name: heap, accesses: 20000, writeRatio: 0.5}",
    "mmapChurn: {iterations: 20, size: 512KiB, touch: 16}",
    "processChurn: {count: 5, size: 128KiB}",
    "mmap: {name: big, size: 8MiB, hugePage: true}",
    "random: {name: big, accesses: 5000, writeRatio: 0.5}",
  ];
  for (const [label, extra] of [
    ["plenty of host memory", {}],
    ["host reclaim with swap", { hostRam: "48MiB", swap: "256MiB", ram: "128MiB" }],
    ["5-level guest paging", { levels: 5 }],
  ] as const) {
    test(`${label}: identical values read, guest counters and checks; no data error`, () => {
      const runs = ["shadow", "ept", "npt"].map((mmu) => run(vmYaml({ mmu, procs: { p0: steps, p1: steps.slice(0, 2) }, ...extra })));
      const [sh, ept, npt] = runs.map((x) => x.r) as [Report, Report, Report];
      expect(shadowOf(runs[0]!.e).checkInvariants()).toEqual([]);
      expect(sh.check.dataErrors).toBe(0);
      expect(sh.check.invariantViolations).toBe(0);
      expect(sh.check.valuesRead).toBeGreaterThan(10000);
      expect(sh.check).toEqual(ept.check);
      expect(npt.check).toEqual(ept.check);
      expect(sh.vms[0]!.guest).toEqual(ept.vms[0]!.guest);
      expect(sh.accesses).toBe(ept.accesses);
    });
  }

  test("two vCPUs share the shadow pages, each with its own roots; remote flushes reach both", () => {
    const churn = [
      "mmapChurn: {iterations: 15, size: 512KiB, touch: 16}",
      "mmap: {name: heap, size: 4MiB}",
      "random: {name: heap, accesses: 8000, writeRatio: 0.5}",
    ];
    const procs = { a: churn, b: churn, c: churn, d: churn };
    const { r: sh, e } = run(vmYaml({ mmu: "shadow", vcpus: 2, procs }));
    const { r: ept } = run(vmYaml({ mmu: "ept", vcpus: 2, procs }));
    expect(sh.check.dataErrors + sh.check.invariantViolations).toBe(0);
    expect(sh.check.valuesRead).toBe(ept.check.valuesRead);
    expect(shadowOf(e).checkInvariants()).toEqual([]);
    const vcpus = sh.vms[0]!.vcpus;
    for (const v of vcpus) expect(v.stats.tlb_flush).toBeGreaterThan(0);
    expect(vcpus[0]!.stats.tlb_flush).toBeGreaterThanOrEqual(stat(sh, "remote_tlb_flush_requests"));
    // Each vCPU holds its own current root (a root page per guest CR3); the pages below are shared.
    const cur = e.machine.vms[0]!.qemu.kvm.vcpus.map((v) => shadowVcpu(v).root.sp!);
    expect(cur[0]!.gfn).not.toBe(cur[1]!.gfn);
  });

  test("guest huge pages: a direct shadow page per 2 MiB page over 4 KiB host pages, a 2 MiB spte over hugetlb backing", () => {
    const procs = {
      p0: [
        "mmap: {name: big, size: 16MiB, hugePage: true}",
        "touch: {name: big, op: write}",
        "random: {name: big, accesses: 4000, writeRatio: 0.5}",
      ],
    };
    const small = run(vmYaml({ mmu: "shadow", procs })).r;
    const huge = run(vmYaml({ mmu: "shadow", procs, backing: "hugetlb-2m" })).r;
    expect(stat(small, "pages_2m")).toBe(0);
    expect(stat(small, "pages_4k")).toBeGreaterThanOrEqual(4096);
    expect(stat(huge, "pages_2m")).toBe(8);
    expect(stat(huge, "n_used_mmu_pages")).toBeLessThan(stat(small, "n_used_mmu_pages") - 7);
    expect(small.check.readDigest).toBe(huge.check.readDigest);
    expect(small.check.dataErrors + huge.check.dataErrors).toBe(0);
  });
});
