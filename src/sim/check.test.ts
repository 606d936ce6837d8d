// SPDX-License-Identifier: MIT
// The checker's schedules: correct code passes at every race pressure from 0 to 1 under both
// race agents, and faults run inside open invalidations (over their own gfn: retry; over a
// neighbour: map).
import { describe, expect, test } from "vitest";
import { RET_PF_FIXED, RET_PF_RETRY } from "../kvm/mmu.js";
import { Engine, MAX_RACES_PER_ACCESS, type RunOptions } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

function scenario(mmu: string) {
  return loadScenario(
    `
seed: 2
host: {ram: 12MiB, swap: 128MiB, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    vcpus: 2
    mmu: ${mmu}
    processes:
      - name: a
        vcpu: 0
        steps:
          - mmap: {name: heap, size: 20MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 4000, writeRatio: 0.5}
      - name: b
        vcpu: 1
        steps:
          - mmap: {name: heap, size: 2MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 6000, writeRatio: 0.5}
`,
    "check.yaml",
  );
}

function check(mmu: string, o: RunOptions) {
  const r = new Engine(scenario(mmu), { sampleEvery: 0, invalidationRaces: true, checks: "full", ...o }).run();
  return { bad: [r.check.dataErrors, r.check.invariantViolations, r.check.messages], retries: r.vms[0]!.stats.mmu_fault_retries ?? 0 };
}

describe("correct code passes memvirt check at every pressure", () => {
  for (const mmu of ["ept", "shadow"])
    for (const raceAgent of ["kswapd", "pageout"] as const)
      test(`${mmu}, ${raceAgent} at the race points: pressure 0 to 1`, () => {
        for (const racePressure of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
          for (const scheduleSeed of [1, 2]) {
            expect({ racePressure, scheduleSeed, bad: check(mmu, { raceAgent, racePressure, scheduleSeed }).bad }).toEqual({
              racePressure,
              scheduleSeed,
              bad: [0, 0, []],
            });
          }
        }
      });

  test("at pressure 1 the page-out adversary races each access's fault at most MAX_RACES_PER_ACCESS times, then lets it through", () => {
    const e = new Engine(scenario("ept"), { sampleEvery: 0, raceAgent: "pageout", racePressure: 1 });
    const kvm = e.machine.vms[0]!.qemu.kvm;
    let inARow = 0;
    let most = 0;
    let last = -1;
    const raced = kvm.racePoint!;
    kvm.racePoint = (vcpu, point, gfn) => {
      if (point === "after-faultin") {
        inARow = gfn === last ? inARow + 1 : 1;
        last = gfn;
        most = Math.max(most, inARow);
      }
      raced(vcpu, point, gfn);
    };
    const r = e.run();
    expect([r.check.dataErrors, r.check.invariantViolations]).toEqual([0, 0]);
    // Each fault is raced MAX_RACES_PER_ACCESS times, then the next attempt maps the page.
    expect(most).toBe(MAX_RACES_PER_ACCESS + 1);
  });
});

describe("a fault while an invalidation is open", () => {
  for (const mmu of ["ept", "npt"])
    test(`${mmu}: over the gfn being invalidated it retries; over a neighbour it maps, and nothing is left stale`, () => {
      const e = new Engine(scenario(mmu), { sampleEvery: 0 });
      e.run();
      const vm = e.machine.vms[0]!;
      const kvm = vm.qemu.kvm;
      let gfn = -1;
      kvm.forEachLeaf((g, level) => {
        if (gfn < 0 && level === 1 && kvm.memslots.find(g + 1) !== null) gfn = g;
      });
      // The neighbour's spte goes (its host page stays), so its fault is a real one.
      kvm.unmapGfnRange(gfn + 1, gfn + 2);
      const got: number[] = [];
      vm.qemu.mm.notifiers.racePoint = () => {
        expect(kvm.mmuInvalidateInProgress).toBe(1);
        got.push(kvm.vcpus[1]!.faultOnce(gfn * 4096, false), kvm.vcpus[1]!.faultOnce((gfn + 1) * 4096, false));
      };
      vm.qemu.madvise(gfn * 4096, 4096, "PAGEOUT");
      vm.qemu.mm.notifiers.racePoint = null;
      expect(got).toEqual([RET_PF_RETRY, RET_PF_FIXED]);
      expect(e.machine.checker.checkStaleMappings()).toBe(0);
    });

  test("memvirt check's schedules run such faults: more retries than without them, and still clean", () => {
    const without = new Engine(scenario("ept"), { sampleEvery: 0, raceAgent: "kswapd", racePressure: 1 }).run();
    const withRaces = check("ept", { raceAgent: "kswapd", racePressure: 1 });
    expect(withRaces.bad).toEqual([0, 0, []]);
    expect(withRaces.retries).toBeGreaterThan(without.vms[0]!.stats.mmu_fault_retries ?? 0);
  });
});
