// SPDX-License-Identifier: MIT
// Dirty logging driven by a scenario's timeline (dirtyLog actions, the VM's dirtyLog options):
// a round of writes to a 4 MiB heap after logging starts makes one fast fault and one dirty
// page per page, the harvest counts exactly those, and the data checker sees nothing lost.
import { describe, expect, test } from "vitest";
import { Engine } from "./engine.js";
import { ScenarioError, loadScenario } from "./scenario_load.js";

function yaml(mmu: string, dirtyLog: string, harvest: string, passes = 2): string {
  return `seed: 1
host: {ram: 512MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 128MiB
    mmu: ${mmu}
    dirtyLog: ${dirtyLog}
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 4MiB}
          - touch: {name: heap, op: write}
          - phase: r1
${"          - touch: {name: heap, op: write}\n".repeat(passes)}          - phase: r2
          - touch: {name: heap, op: read}
timeline:
  - at: {phase: r1}
    dirtyLog: {vm: vm0, op: start}
  - at: {phase: r2}
    dirtyLog: {vm: vm0, op: ${harvest}}
`;
}

function run(text: string) {
  const r = new Engine(loadScenario(text, "t.yaml")).run();
  expect(r.check.dataErrors).toBe(0);
  return r.vms[0]!.stats;
}

describe("timeline dirtyLog", () => {
  test.each([
    ["npt", "{mode: wp}", "get"],
    ["npt", "{mode: wp, manualProtect: true}", "clear"],
    ["npt", "{mode: ring, ringEntries: 4096}", "get"],
  ])("%s %s, %s: 1024 pages written twice in the round -> 1024 fast faults, 1024 pages harvested", (mmu, o, op) => {
    const st = run(yaml(mmu, o, op));
    expect(st.pf_fast).toBe(1024);
    expect(st.dirty_pages_harvested).toBe(1024);
  });

  test("EPT with A/D: the walk's accesses to guest tables count as writes (SDM 29.3.5), so guest table frames are logged beside the heap", () => {
    const st = run(yaml("ept", "{mode: wp}", "get"));
    expect(st.dirty_pages_harvested).toBeGreaterThan(1024);
    expect(st.pf_fast).toBeGreaterThanOrEqual(st.dirty_pages_harvested);
  });

  test("ring of 128 entries: soft limit 64, one write pass: the VMM reaps at each KVM_EXIT_DIRTY_RING_FULL (1024 / 64 = 16), nothing lost", () => {
    const st = run(yaml("npt", "{mode: ring, ringEntries: 128}", "get", 1));
    expect(st.dirty_ring_full_exits).toBe(16);
    // The write whose push filled the ring has not retired when the vCPU exits; the reset
    // re-protects its page, so it faults and is logged again: one extra entry per exit.
    expect(st.dirty_pages_harvested).toBe(1024 + 16);
  });

  test("EPT with PML: no fault at all; exactly the pages write protection harvests; one PML entry per page per round; a PML-full exit per 512", () => {
    const text = yaml("ept", "{mode: pml}", "get");
    const r = new Engine(loadScenario(text, "t.yaml")).run();
    expect(r.check.dataErrors).toBe(0);
    const st = r.vms[0]!.stats;
    const wp = run(yaml("ept", "{mode: wp}", "get"));
    expect(st.pf_fast).toBe(0);
    expect(st.dirty_pages_harvested).toBe(wp.dirty_pages_harvested);
    const full = r.vms[0]!.vcpus.reduce((n, v) => n + (v.exitReasons.PML_FULL ?? 0), 0);
    // 1024 heap pages and the guest table pages (EPT A/D: table reads are writes): 1030. The round
    // has no other exit, so the buffer fills at entries 513 and 1025; the read pass after the get
    // logs the re-armed table pages once more.
    const h = wp.dirty_pages_harvested;
    expect(h).toBe(1030);
    expect([st.dirty_pages_harvested, full, r.vms[0]!.hw.pmlEntries]).toEqual([h, Math.floor((h - 1) / 512), h + (h - 1024)]);
  });

  test("clear without manual protect, and initiallySet without manualProtect, are refused at load", () => {
    const errs = (t: string) => {
      try {
        loadScenario(t, "t.yaml");
      } catch (e) {
        expect(e).toBeInstanceOf(ScenarioError);
        return (e as ScenarioError).format();
      }
      throw new Error("the scenario validated");
    };
    expect(errs(yaml("ept", "{mode: wp}", "clear"))).toMatch(/timeline\[1\]\.dirtyLog\.op: clear needs KVM_CLEAR_DIRTY_LOG/);
    expect(errs(yaml("ept", "{initiallySet: true}", "get"))).toMatch(/dirtyLog\.initiallySet: initiallySet needs manualProtect: true/);
    expect(errs(yaml("npt", "{mode: pml}", "get"))).toMatch(
      /vms\[0\]\.dirtyLog\.mode: PML is Intel's and logs EPT dirty flags: set mmu to ept/,
    );
  });
});
