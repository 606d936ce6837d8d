// SPDX-License-Identifier: MIT
// End to end under EPT/NPT (SEED-PATHS.md paths 1, 3, 4, 5, 6): scenarios run through the
// whole stack, with the counts Linux and KVM define.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import type { SimEvent } from "../hw/events.js";
import { readFileSync } from "node:fs";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { BufferSource } from "../workload/trace.js";
import { Engine } from "./engine.js";
import { Machine } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

const MiB = 2 ** 20;

function scenario(yaml: string) {
  return loadScenario(yaml, "test.yaml");
}

function vmYaml(o: { mmu?: string; ram?: string; backing?: string; prealloc?: boolean; hostRam?: string; swap?: string; steps?: string }) {
  return `
seed: 7
host: {ram: ${o.hostRam ?? "2GiB"}, swap: ${o.swap ?? "0"}, thp: never}
vms:
  - name: vm0
    ram: ${o.ram ?? "1GiB"}
    mmu: ${o.mmu ?? "ept"}
    backing: ${o.backing ?? "4k"}
    prealloc: ${o.prealloc ?? false}
    processes:
      - name: p0
        steps:
${o.steps ?? "          - mmap: {name: heap, size: 4MiB}"}
`;
}

/** Counters that must move together on a first touch. */
function snapshot(m: Machine) {
  const vm = m.vms[0]!;
  const s = vm.qemu.kvm.statsWithVcpus();
  const v = m.host.vmstat();
  return {
    pgfault: v.pgfault!,
    pf_fixed: s.pf_fixed!,
    exits: s.exits!,
    rss: vm.qemu.rss().rss,
    pswpin: v.pswpin!,
    retries: s.mmu_fault_retries!,
    pf_taken: s.pf_taken!,
  };
}

function delta(a: ReturnType<typeof snapshot>, b: ReturnType<typeof snapshot>) {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - a[k as keyof typeof a]])) as ReturnType<typeof snapshot>;
}

describe("first touch under EPT (path 4)", () => {
  for (const mmu of ["ept", "npt"]) {
    test(`${mmu}: 1000 written pages grow pgfault, pf_fixed and QEMU RSS by the guest pages touched, tables included; a second pass exits never`, () => {
      const m = new Machine(scenario(vmYaml({ mmu })));
      const vm = m.vms[0]!;
      const ps = vm.procs[0]!;
      vm.contextSwitch(ps.proc, 0);
      const gva = vm.mmap(ps.proc, "heap", 1000 * PAGE_SIZE);
      const before = snapshot(m);
      for (let i = 0; i < 1000; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
      const d = delta(before, snapshot(m));
      // Guest pages first touched: 1000 data frames, plus the guest tables the fault path
      // allocated and cleared for this range: a PUD page, a PMD page (the process's PGD
      // existed already) and one PT page per 2 MiB region the range spans.
      const end = gva + 1000 * PAGE_SIZE - 1;
      const ptPages = Math.floor(end / 2 ** 21) - Math.floor(gva / 2 ** 21) + 1;
      const touched = 1000 + 2 + ptPages;
      expect(ptPages).toBeGreaterThanOrEqual(2);
      expect(d.pgfault).toBe(touched);
      expect(d.pf_fixed).toBe(touched);
      expect(d.rss).toBe(touched * PAGE_SIZE);
      expect(d.exits).toBe(touched);
      expect(m.host.vmstat().pgmajfault).toBe(0);
      // Second pass: every page is mapped in the guest, in EPT/NPT and on the host.
      const mid = snapshot(m);
      for (let i = 0; i < 1000; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
      const d2 = delta(mid, snapshot(m));
      expect(d2).toEqual({ pgfault: 0, pf_fixed: 0, exits: 0, rss: 0, pswpin: 0, retries: 0, pf_taken: 0 });
      expect(m.checker.dataErrors).toBe(0);
      expect(vm.qemu.kvm.stats.pages_4k).toBe(vm.qemu.mm.rss);
    });
  }

  test("QEMU reserves guest RAM lazily: a 1 GiB VM that touches nothing has no RSS and no EPT leaf (path 1)", () => {
    const m = new Machine(scenario(vmYaml({})));
    const vm = m.vms[0]!;
    // Boot: the guest kernel cleared its own page-table root and zero page, and the process PGD.
    expect(vm.qemu.rss().rss).toBeLessThan(16 * PAGE_SIZE);
    expect(vm.qemu.kvm.stats.pages_4k).toBe(vm.qemu.rss().rss / PAGE_SIZE);
  });

  test("NPT and EPT give the same fault counts and values on the same scenario", () => {
    const steps = "          - mmap: {name: heap, size: 8MiB}\n          - random: {name: heap, accesses: 20000, writeRatio: 0.4}";
    const ept = new Engine(scenario(vmYaml({ mmu: "ept", steps }))).run();
    const npt = new Engine(scenario(vmYaml({ mmu: "npt", steps }))).run();
    for (const k of ["pf_taken", "pf_fixed", "exits", "pages_4k"]) expect(npt.vms[0]!.stats[k]).toBe(ept.vms[0]!.stats[k]);
    expect(npt.host.vmstat.pgfault).toBe(ept.host.vmstat.pgfault);
    expect(npt.check).toEqual(ept.check);
    expect(ept.check.dataErrors).toBe(0);
    // The walks differ only where the formats do: same number of references of each kind.
    expect(npt.vms[0]!.hw.references).toEqual(ept.vms[0]!.hw.references);
  });
});

describe("prealloc and huge pages", () => {
  test("prealloc: true faults every page at start and nothing later", () => {
    const m = new Machine(scenario(vmYaml({ ram: "64MiB", prealloc: true })));
    const vm = m.vms[0]!;
    const afterBoot = m.host.vmstat().pgfault!;
    expect(afterBoot).toBe((64 * MiB) / PAGE_SIZE);
    const ps = vm.procs[0]!;
    vm.contextSwitch(ps.proc, 0);
    const gva = vm.mmap(ps.proc, "heap", 4 * MiB);
    for (let i = 0; i < 1024; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
    expect(m.host.vmstat().pgfault).toBe(afterBoot);
    // KVM still maps each page on first use (gup finds it mapped: no host fault).
    expect(vm.qemu.kvm.statsWithVcpus().pf_fixed).toBeGreaterThan(1024);
  });

  test("hugetlb-2m backing gives 2 MiB EPT leaves and fewer nested reads per walk", () => {
    const steps =
      "          - mmap: {name: heap, size: 32MiB}\n          - touch: {name: heap, op: write}\n          - random: {name: heap, accesses: 20000, writeRatio: 0}";
    const small = new Engine(scenario(vmYaml({ ram: "256MiB", steps }))).run();
    const huge = new Engine(scenario(vmYaml({ ram: "256MiB", backing: "hugetlb-2m", steps }))).run();
    const h = huge.vms[0]!;
    expect(h.stats.pages_2m).toBeGreaterThan(0);
    expect(h.stats.pages_4k).toBe(0);
    expect(small.vms[0]!.stats.pages_2m).toBe(0);
    const perWalk = (r: typeof small) => r.vms[0]!.hw.references.nestedTable / r.vms[0]!.hw.walks;
    expect(perWalk(huge)).toBeLessThan(perWalk(small));
    expect(huge.check.dataErrors).toBe(0);
  });
});

describe("reclaim, the mmu_notifier and swap (paths 5 and 6)", () => {
  test("64 MiB host, 256 MiB swap: 128 MiB written reads back; one zap per eviction; one exit and one swap-in per re-touch", () => {
    const m = new Machine(scenario(vmYaml({ hostRam: "64MiB", swap: "256MiB", ram: "256MiB" })));
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
    const mid = snapshot(m);
    const midMm = { min: vm.qemu.mm.minFlt, maj: vm.qemu.mm.majFlt };
    for (let i = 0; i < pages; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
    const d = delta(mid, snapshot(m));
    const v = m.host.vmstat();
    expect(m.checker.dataErrors).toBe(0);
    expect(m.checker.invariantViolations).toBe(0);
    expect(v.oom_kill).toBe(0);
    expect(v.pswpout).toBeGreaterThan(pages / 2);
    expect(v.pswpin).toBeGreaterThan(0);
    expect(v.pgscan_kswapd! + v.pgscan_direct!).toBeGreaterThan(0);
    // Each unmap by reclaim is preceded by exactly one KVM zap of that page's leaf.
    let unmaps = 0;
    for (let i = 0; i < events.length; i++) {
      if (events[i]!.kind !== "host.unmap") continue;
      unmaps++;
      const zap = events[i - 1]!;
      expect(zap.kind).toBe("kvm.notifier_zap");
      expect(zap.zapped).toBe(1);
      expect(zap.start).toBe(events[i]!.hva);
    }
    expect(unmaps).toBeGreaterThan(pages / 2);
    // The read-back pass: every exit is a fault; each install follows one host fault on QEMU's
    // mm (a swap-in, or a swap-cache hit); the rest retried because an invalidation raced them.
    expect(d.exits).toBe(d.pf_taken);
    expect(d.pf_taken).toBe(d.pf_fixed + d.retries);
    expect(d.pf_fixed).toBe(vm.qemu.mm.minFlt + vm.qemu.mm.majFlt - midMm.min - midMm.maj);
    expect(vm.qemu.mm.majFlt - midMm.maj).toBe(d.pswpin);
    expect(d.pswpin).toBeGreaterThan(pages / 4);
    // No EPT leaf outlives its host mapping.
    expect(m.checker.checkStaleMappings()).toBe(0);
  });

  test("the same without swap: an OOM, reported clearly, never a wrong value", () => {
    const s = scenario(
      vmYaml({
        hostRam: "64MiB",
        swap: "0",
        ram: "256MiB",
        steps: "          - mmap: {name: heap, size: 128MiB}\n          - touch: {name: heap, op: write}",
      }),
    );
    const e = new Engine(s);
    expect(() => e.run()).toThrow(/out of memory|OOM|oom/i);
    expect(e.machine.checker.dataErrors).toBe(0);
    expect(e.machine.host.vmstat().oom_kill).toBe(1);
  });
});

describe("the invalidation race (kvm_faultin_pfn vs invalidate_range_start/end)", () => {
  /** A scenario whose one vCPU writes a page while a balloon madvise(DONTNEED)s it between faultin and install. */
  function raceRun(skipCheck: boolean) {
    const m = new Machine(scenario(vmYaml({})));
    const vm = m.vms[0]!;
    const kvm = vm.qemu.kvm;
    kvm.debugSkipSeqCheck = skipCheck;
    const ps = vm.procs[0]!;
    vm.contextSwitch(ps.proc, 0);
    const gva = vm.mmap(ps.proc, "heap", 16 * PAGE_SIZE);
    m.runAccess(ps, gva, OP_WRITE); // the guest tables exist now
    let fired = false;
    let victimGfn = -1;
    kvm.racePoint = (_v, point, gfn) => {
      if (point === "after-faultin" && !fired) {
        fired = true;
        victimGfn = gfn;
        vm.qemu.madvise(gfn * PAGE_SIZE, PAGE_SIZE, "DONTNEED");
      }
    };
    let failure = "";
    try {
      m.runAccess(ps, gva + PAGE_SIZE, OP_WRITE);
    } catch (e) {
      failure = (e as Error).message;
    }
    kvm.racePoint = null;
    return { m, kvm, victimGfn, fired, failure };
  }

  test("an invalidation between faultin and install makes the handler retry; the data is intact", () => {
    const { m, kvm, fired } = raceRun(false);
    expect(fired).toBe(true);
    expect(kvm.stats.mmu_fault_retries).toBe(1);
    const s = kvm.statsWithVcpus();
    expect(s.pf_taken).toBe(s.pf_fixed! + 1);
    expect(m.checker.checkStaleMappings()).toBe(0);
    const vm = m.vms[0]!;
    const ps = vm.procs[0]!;
    const gva = ps.proc.vmas[0]!.start;
    m.runAccess(ps, gva + PAGE_SIZE, OP_READ);
    expect(m.checker.dataErrors).toBe(0);
    expect(m.checker.invariantViolations).toBe(0);
  });

  test("with the sequence check skipped, the checker reports the stale mapping on the same schedule", () => {
    const { m, kvm, victimGfn, failure } = raceRun(true);
    expect(kvm.stats.mmu_fault_retries).toBe(0);
    // KVM itself notices at install time and stops the vCPU before the guest uses the page...
    expect(failure).toMatch(/stale mapping: gfn/);
    expect(kvm.staleInstalls).toBe(1);
    // ...and the invariant checker finds the leaf pointing at a page QEMU no longer maps.
    expect(m.checker.checkStaleMappings()).toBe(1);
    expect(m.checker.violations.join("\n")).toMatch(new RegExp(`gfn 0x${victimGfn.toString(16)} .*stale mapping`));
  });
});

describe("determinism", () => {
  test("the same scenario and seed give the same report", () => {
    const y = vmYaml({
      hostRam: "48MiB",
      swap: "128MiB",
      ram: "128MiB",
      steps: "          - mmap: {name: heap, size: 64MiB}\n          - random: {name: heap, accesses: 30000, writeRatio: 0.5}",
    });
    const a = new Engine(scenario(y)).run();
    const b = new Engine(scenario(y)).run();
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.check.dataErrors).toBe(0);
  });
});

describe("trace replay", () => {
  test("a real Lackey trace replays on the guest: every access runs, its regions are mapped as it goes", () => {
    const s = scenario(vmYaml({ ram: "256MiB", steps: "          - trace: {file: true.lackey.gz}" }));
    const e = new Engine(s, {
      openFile: () => new BufferSource(readFileSync(new URL("../../test/fixtures/true.lackey.gz", import.meta.url))),
    });
    const r = e.run();
    expect(r.accesses).toBe(167418);
    expect(r.check.dataErrors).toBe(0);
    expect(e.machine.vms[0]!.procs[0]!.traceRegions).toBeGreaterThan(2);
    expect(r.vms[0]!.guest.pgfault).toBeGreaterThan(10);
  });

  test("without a file reader the run stops with a clear message", () => {
    const s = scenario(vmYaml({ steps: "          - trace: {file: x.mvt}" }));
    expect(() => new Engine(s).run()).toThrow(/cannot read files; run the scenario from the CLI/);
  });
});

describe("workload steps", () => {
  test("zipf, pointerChase, phases, mmapChurn and processChurn run with their planned accesses and read back", () => {
    const steps = [
      "          - mmap: {name: heap, size: 8MiB}",
      "          - zipf: {name: heap, accesses: 5000, writeRatio: 0.5}",
      "          - pointerChase: {name: heap, accesses: 5000}",
      "          - phases: {name: heap, accesses: 5000, workingSet: 1MiB, phases: 5, writeRatio: 0.2}",
      "          - mmapChurn: {iterations: 20, size: 256KiB, touch: 16}",
      "          - processChurn: {count: 10, size: 128KiB}",
    ].join("\n");
    const e = new Engine(scenario(vmYaml({ steps })));
    const r = e.run();
    expect(r.accesses).toBe(15000 + 20 * 16 + 10 * 32);
    expect(r.check.dataErrors).toBe(0);
    const g = e.machine.vms[0]!.guest;
    // Every churned process and region gave its frames back.
    expect(g.processes.filter((p) => p.alive)).toHaveLength(1);
    expect(r.vms[0]!.guest.pgfault).toBeGreaterThanOrEqual(20 * 16 + 10 * 32);
  });
});

describe("the data checker", () => {
  test("a timeline madvise(DONTNEED) on guest memory still in use is reported as lost data", () => {
    const s = scenario(`seed: 3
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 32MiB}
          - touch: {name: heap, op: write}
          - touch: {name: heap, op: read}
timeline:
  - at: {accesses: 8192}
    madvise: {vm: vm0, gpa: 0x0, size: 256MiB, advice: DONTNEED}
`);
    const r = new Engine(s).run();
    expect(r.check.dataErrors).toBeGreaterThan(1000);
    expect(r.check.messages.join("\n")).toMatch(/the host discarded a page the guest was using/);
  });
});

describe("time slices", () => {
  /** VM `name` with vCPU `cpu` shared by two processes of 10,000 random accesses each, beside VM "a" whose vCPU 11 does the same. */
  function ctxt(name: string, cpu: number): number {
    const procs = (vm: string, vcpu: number) =>
      [0, 1]
        .map((i) => `      - {name: ${vm}p${i}, vcpu: ${vcpu}, steps: [{random: {size: 1MiB, accesses: 10_000, writeRatio: 0.5}}]}`)
        .join("\n");
    const s = scenario(`
seed: 5
host: {ram: 2GiB, swap: 0, thp: never}
vms:
  - name: a
    ram: 64MiB
    vcpus: 12
    processes:
${procs("a", 11)}
  - name: ${name}
    ram: 64MiB
    vcpus: ${cpu + 1}
    processes:
${procs(name, cpu)}
`);
    const r = new Engine(s, { sampleEvery: 0 }).run();
    return r.vms[1]!.guest.ctxt!;
  }

  test("each vCPU has its own: VM a1's vCPU 1 is not VM a's vCPU 11 (the key once collided as 'a11')", () => {
    expect(ctxt("a1", 1)).toBe(ctxt("b1", 1));
  });
});
