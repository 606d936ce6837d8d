// SPDX-License-Identifier: MIT
// Phases (`- phase: name`): a run-wide barrier and a boundary at which every counter is
// snapshot. The phases of a run sum exactly to the run; a process's steps after a marker wait
// for every other process that names the phase; timeline actions attached to a phase run at
// its boundary.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import type { SimEvent } from "../hw/events.js";
import { Engine } from "./engine.js";
import { Machine } from "./machine.js";
import { PHASE_COUNTER_KINDS, type PhaseReport } from "./phases.js";
import type { Report } from "./report.js";
import { loadScenario } from "./scenario_load.js";

/** access_tracking_perf_test's shape: populate, access, age; two processes on two vCPUs, a third sharing vCPU 0. */
const THREE_PHASES = `
seed: 11
host: {ram: 128MiB, swap: 128MiB, thp: never}
vms:
  - name: vm0
    ram: 96MiB
    vcpus: 2
    processes:
      - name: a
        vcpu: 0
        steps:
          - mmap: {name: heap, size: 4MiB}
          - phase: populate
          - touch: {name: heap, op: write}
          - phase: access
          - random: {name: heap, accesses: 3000, writeRatio: 0.5}
          - phase: age
          - sequential: {name: heap}
      - name: b
        vcpu: 1
        steps:
          - mmap: {name: heap, size: 8MiB}
          - phase: populate
          - touch: {name: heap, op: write}
          - phase: access
          - zipf: {name: heap, accesses: 3000, writeRatio: 0.2}
          - phase: age
          - random: {name: heap, accesses: 2000, writeRatio: 0.1}
      - name: c
        vcpu: 0
        steps:
          - random: {size: 1MiB, accesses: 6000, writeRatio: 0.5}
  - name: vm1
    ram: 32MiB
    processes:
      - name: d
        steps:
          - touch: {size: 2MiB, op: write}
          - phase: access
          - touch: {size: 2MiB, op: read}
timeline:
  - at: {phase: age}
    madvise: {vm: vm0, gpa: 0, size: 96MiB, advice: PAGEOUT}
  - at: {accesses: 9000}
    madvise: {vm: vm1, gpa: 0, size: 32MiB, advice: COLD}
`;

function run(yaml: string, events?: SimEvent[]): Report {
  const s = loadScenario(yaml, "phases.yaml");
  const m = new Machine(s);
  if (events) m.bus.listen((e) => events.push(e));
  return new Engine(s, {}, m).run();
}

/** Sum over phases of a cumulative counter; the last phase's value of a gauge. */
function expectPhasesMakeWhole(
  kinds: ReadonlyMap<string, string> | null,
  phases: readonly (Record<string, number> | undefined)[],
  whole: Record<string, number>,
  where: string,
) {
  const keys = new Set([...Object.keys(whole), ...phases.flatMap((p) => Object.keys(p ?? {}))]);
  for (const k of keys) {
    const gauge = kinds !== null && (kinds.get(k) ?? "cumulative") !== "cumulative";
    const got = gauge ? (phases[phases.length - 1]?.[k] ?? 0) : phases.reduce((a, p) => a + (p?.[k] ?? 0), 0);
    expect(got, `${where}.${k}${gauge ? " (gauge: the last phase's value)" : " (summed over the phases)"}`).toBe(whole[k] ?? 0);
  }
}

describe("phases of a run", () => {
  const events: SimEvent[] = [];
  const r = run(THREE_PHASES, events);
  const phases = r.phases!;

  test("start, then one phase per boundary in the order they happened; each begins where the previous ended", () => {
    expect(phases.map((p) => p.name)).toEqual(["start", "populate", "access", "age"]);
    expect(phases[0]!.startAccesses).toBe(0);
    expect(phases[0]!.startCycles).toBe(0);
    for (let i = 1; i < phases.length; i++) {
      expect(phases[i]!.startAccesses).toBe(phases[i - 1]!.endAccesses);
      expect(phases[i]!.startCycles).toBe(phases[i - 1]!.endCycles);
    }
    expect(phases.at(-1)!.endAccesses).toBe(r.accesses);
    expect(phases.at(-1)!.endCycles).toBe(r.cost.cycles);
    expect(events.filter((e) => e.kind === "sim.phase").map((e) => (e as unknown as { phase: string }).phase)).toEqual([
      "populate",
      "access",
      "age",
    ]);
    expect(r.check.dataErrors).toBe(0);
    expect(r.check.invariantViolations).toBe(0);
  });

  test("every cumulative counter of the phases sums exactly to the run's; every gauge's last value is the run's", () => {
    const K = PHASE_COUNTER_KINDS;
    const sum = (f: (p: PhaseReport) => number) => phases.reduce((a, p) => a + f(p), 0);
    expect(sum((p) => p.endAccesses - p.startAccesses)).toBe(r.accesses);
    expect(sum((p) => p.cost.cycles)).toBe(r.cost.cycles);
    expect(sum((p) => p.native!.cycles)).toBe(r.native!.cycles);
    expectPhasesMakeWhole(
      null,
      phases.map((p) => p.cost.breakdown),
      r.cost.breakdown,
      "cost.breakdown",
    );
    expectPhasesMakeWhole(
      K.host,
      phases.map((p) => p.host.vmstat),
      r.host.vmstat,
      "host.vmstat",
    );
    r.vms.forEach((vm, i) => {
      const at = (p: PhaseReport) => p.vms[i]!;
      expectPhasesMakeWhole(
        K.kvm,
        phases.map((p) => at(p).stats),
        vm.stats,
        `${vm.name}.stats`,
      );
      vm.vcpus.forEach((v, c) => {
        expectPhasesMakeWhole(
          K.kvm,
          phases.map((p) => at(p).vcpus[c]!.stats),
          v.stats,
          `${vm.name}.vcpu${c}`,
        );
        expectPhasesMakeWhole(
          null,
          phases.map((p) => at(p).vcpus[c]!.exitReasons),
          v.exitReasons,
          `${vm.name}.vcpu${c}.exitReasons`,
        );
      });
      expectPhasesMakeWhole(
        K.qemu,
        phases.map((p) => at(p).qemu),
        vm.qemu,
        `${vm.name}.qemu`,
      );
      expectPhasesMakeWhole(
        K.guest,
        phases.map((p) => at(p).guest),
        vm.guest,
        `${vm.name}.guest`,
      );
      const { references: _r, tableReadsPerWalk: _t, ...hw } = vm.hw;
      expectPhasesMakeWhole(
        K.hw,
        phases.map((p) => at(p).hw),
        hw as Record<string, number>,
        `${vm.name}.hw`,
      );
      expect(sum((p) => at(p).cost.cycles)).toBe(vm.cost.cycles);
      expect(sum((p) => at(p).native!.cycles)).toBe(vm.native!.cycles);
    });
    // The sums are not trivially zero: each phase moved something.
    for (const p of phases) expect(p.cost.cycles).toBeGreaterThan(0);
    expect(phases[3]!.host.vmstat.pswpout).toBeGreaterThan(0);
  });

  test("every counter the report carries has a declared kind (cumulative, instant or peak), so a phase knows to subtract it or not", () => {
    const K = PHASE_COUNTER_KINDS;
    const undeclared = (kinds: ReadonlyMap<string, string>, values: object) => Object.keys(values).filter((k) => !kinds.has(k));
    const p = phases[0]!;
    expect(undeclared(K.host, p.host.vmstat)).toEqual([]);
    expect(undeclared(K.kvm, p.vms[0]!.stats)).toEqual([]);
    expect(undeclared(K.qemu, p.vms[0]!.qemu)).toEqual([]);
    expect(undeclared(K.guest, p.vms[0]!.guest)).toEqual([]);
    expect(undeclared(K.hw, p.vms[0]!.hw)).toEqual([]);
  });
});

describe("a phase marker is a barrier", () => {
  // a writes 1 MiB and b 4 MiB, each on its own vCPU; at the boundary "age" the whole guest RAM
  // is paged out; then a reads its pages back.
  const yaml = `
seed: 5
host: {ram: 128MiB, swap: 64MiB, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    vcpus: 2
    processes:
      - name: a
        vcpu: 0
        steps:
          - mmap: {name: heap, size: 1MiB}
          - touch: {name: heap, op: write}
          - phase: age
          - touch: {name: heap, op: read}
      - name: b
        vcpu: 1
        steps:
          - mmap: {name: heap, size: 4MiB}
          - touch: {name: heap, op: write}
          - phase: age
timeline:
  - at: {phase: age}
    madvise: {vm: vm0, gpa: 0, size: 64MiB, advice: PAGEOUT}
`;
  const r = run(yaml);
  const [start, age] = r.phases!;

  test("a's reads wait for b: the phase before the marker holds every write of both and no read", () => {
    const pages = (1 + 4) * (2 ** 20 / PAGE_SIZE);
    expect(start!.endAccesses).toBe(pages);
    expect(start!.vms[0]!.guest.pgfault).toBe(pages);
    expect(start!.vms[0]!.hw.dataAccesses).toBe(pages);
    expect(age!.endAccesses - age!.startAccesses).toBe(256);
    expect(age!.vms[0]!.guest.pgfault).toBe(0);
  });

  test("the madvise attached to the phase runs after both finished writing: it pages out every page QEMU had then", () => {
    const resident = start!.vms[0]!.qemu.rssBytes / PAGE_SIZE;
    // Every guest page written (data and the guest's tables) was faulted in once on the host.
    expect(resident).toBe(start!.host.vmstat.pgfault);
    expect(resident).toBeGreaterThan(5 * 256);
    expect(age!.host.vmstat.pswpout).toBe(resident);
    expect(start!.host.vmstat.pswpout).toBe(0);
    // a's reads bring its pages back from swap, and read what it wrote.
    expect(age!.host.vmstat.pswpin).toBeGreaterThanOrEqual(256);
    expect(r.check.dataErrors).toBe(0);
  });

  test("a process that waits leaves its vCPU to the others: a third process on a's vCPU runs while a waits", () => {
    const withC = yaml.replace(
      "      - name: b\n",
      "      - name: c\n        vcpu: 0\n        steps:\n          - random: {size: 1MiB, accesses: 20000, writeRatio: 0.5}\n      - name: b\n",
    );
    const r2 = run(withC);
    expect(r2.accesses).toBe(5 * 256 + 256 + 20000);
    // a reaches its marker within its first timeslice, so c's accesses before the boundary ran while a waited.
    expect(r2.phases![0]!.endAccesses).toBeGreaterThan(5 * 256);
    expect(r2.phases![1]!.host.vmstat.pswpout).toBe(r2.phases![0]!.vms[0]!.qemu.rssBytes / PAGE_SIZE);
    expect(r2.check.dataErrors).toBe(0);
  });
});

describe("scenarios without markers", () => {
  test("have no phases in the report, and run as before", () => {
    const r = run(`
host: {ram: 64MiB}
vms: [{name: vm0, ram: 32MiB, processes: [{name: p, steps: [{touch: {size: 1MiB, op: write}}]}]}]
`);
    expect("phases" in r).toBe(false);
    expect(r.accesses).toBe(256);
  });
});
