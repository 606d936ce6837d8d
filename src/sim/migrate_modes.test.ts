// SPDX-License-Identifier: MIT
// Migration harvests the dirty log as the VM's KVM logs (qemu/dirty_sync.ts): KVM_GET_DIRTY_LOG,
// manual protect with KVM_CLEAR_DIRTY_LOG per clear_bmap chunk, or the dirty ring. The same
// writes in each round find the same pages dirty, so every mode sends the same pages per round;
// with initially-set or small chunks, writes before a chunk's clear go with that send and are not resent.
import { describe, expect, test } from "vitest";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";
import { precopyScenario } from "./migration_scenario.fixture.js";

/** A guest writing at random over 2 MiB (100 µs per access), migrated at 1 MiB/s from its 256th access. */
function scenario(dirtyLog: string, migrate = ""): string {
  return precopyScenario({ dirtyLog, migrate: `bandwidth: 1MiB, downtimeLimit: 30${migrate}` });
}

function run(dirtyLog: string, migrate = "") {
  const e = new Engine(loadScenario(scenario(dirtyLog, migrate), "modes.yaml"));
  const report = e.run();
  const mr = e.machine.migrations[0]!;
  return { report, res: mr.migration.result, src: mr.migration.src.kvm };
}

const rounds = (r: ReturnType<typeof run>) => r.res.iterations.map((it) => [it.pagesSent, it.dirtyPages]);

describe("migration's dirty tracking follows the VM's dirtyLog mode", () => {
  test("wp, manual protect (1 GiB chunks) and the dirty ring (one that fills, too) send the same pages in every round", () => {
    const wp = run("{mode: wp}");
    expect(wp.report.check.dataErrors).toBe(0);
    expect(wp.res.forced).toBe(false);
    expect(wp.res.iterations.length).toBeGreaterThanOrEqual(4);
    for (const m of ["{mode: wp, manualProtect: true}", "{mode: ring}", "{mode: ring, ringEntries: 128}"]) {
      const o = run(m);
      expect(o.report.check.dataErrors).toBe(0);
      expect(rounds(o)).toEqual(rounds(wp));
      expect(o.res.totalTime).toBe(wp.res.totalTime);
    }
  });

  test("a 128-entry ring fills within a round: KVM_EXIT_DIRTY_RING_FULL, reaped into the migration's bitmap", () => {
    const ring = run("{mode: ring, ringEntries: 128}");
    // kvm_dirty_ring_soft_full(): 128 - 64 reserved entries; the bulk round's writes to 512 pages overflow it.
    expect(ring.src.vcpus[0]!.stats.dirty_ring_full_exits).toBeGreaterThan(0);
    expect(rounds(ring)).toEqual(rounds(run("{mode: ring}")));
  });

  test("initially-set: writes before the first chunk's clear go in the bulk stage and are not resent", () => {
    const wp = run("{mode: wp}");
    const init = run("{mode: wp, manualProtect: true, initiallySet: true}");
    expect(init.report.check.dataErrors).toBe(0);
    expect(init.res.iterations[0]!.pagesSent).toBe(4096); // the bulk stage: every page of 16 MiB
    expect(init.res.iterations[0]!.dirtyPages).toBeLessThan(wp.res.iterations[0]!.dirtyPages);
  });

  test("64-page clear chunks: a page written after the sync but before its chunk's clear is sent once, not twice", () => {
    const wp = run("{mode: wp}");
    const small = run("{mode: wp, manualProtect: true}", ", clearBitmapShift: 6");
    expect(small.report.check.dataErrors).toBe(0);
    // No chunk to clear in the bulk round (the first sync found nothing): it is the same as wp.
    expect(rounds(small)[0]).toEqual(rounds(wp)[0]);
    expect(small.res.iterations[1]!.pagesSent).toBe(wp.res.iterations[1]!.pagesSent);
    expect(small.res.iterations[1]!.dirtyPages).toBeLessThan(wp.res.iterations[1]!.dirtyPages);
  });
});

describe("migrate's dirty-tracking keys are checked", () => {
  test("clearBitmapShift outside 6..31, and dirtyLog actions on the migrating VM, are errors naming the path", () => {
    expect(() => loadScenario(scenario("{mode: wp, manualProtect: true}", ", clearBitmapShift: 40"), "m.yaml")).toThrow(
      /timeline\[0\]\.migrate\.clearBitmapShift: 40 is above 31; a shift from 6 to 31/,
    );
    expect(() => loadScenario(scenario("{mode: wp, manualProtect: true}", ", clearBitmapShift: 5"), "m.yaml")).toThrow(
      /timeline\[0\]\.migrate\.clearBitmapShift: 5 is too small; at least 6/,
    );
    const withLog = `${scenario("{mode: wp}")}  - at: {accesses: 100}\n    dirtyLog: {vm: vm0, op: start}\n`;
    expect(() => loadScenario(withLog, "m.yaml")).toThrow(/timeline\[0\]\.migrate\.vm: vm0 also has dirtyLog actions/);
  });
});
