// SPDX-License-Identifier: MIT
// Live migration end to end: the guest moves to the destination QEMU and every value it wrote
// reads back there; post-copy faults once per page it touches that the background stream did
// not bring first, each waiting one round trip plus the page's transfer.
import { describe, expect, test } from "vitest";
import { NORMAL_PAGE_BYTES } from "../qemu/ram_transfer.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";
import { precopyScenario } from "./migration_scenario.fixture.js";

function run(yaml: string) {
  const e = new Engine(loadScenario(yaml, "migrate.yaml"));
  const report = e.run();
  const mr = e.machine.migrations[0]!;
  return { e, report, mr, res: mr.migration.result };
}

/** A guest writing `w` pages, then (after the migrate action at `at` accesses) reading them twice. */
function scenario(w: number, at: number, migrate: string): string {
  return `
seed: 7
host: {ram: 512MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    vcpus: 1
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: buf, size: ${w * 4}KiB}
          - touch: {name: buf, op: write}
          - touch: {name: buf, op: read}
          - touch: {name: buf, op: read}
timeline:
  - at: {accesses: ${at}}
    migrate: {vm: vm0, ${migrate}}
`;
}

describe("post-copy", () => {
  test("each page touched after the switch faults once on the destination (a slow link: no background page first), no value lost", () => {
    const W = 256;
    // 4 KiB/s: one page takes a second on the link, so the background stream brings nothing before the guest touches it.
    const { e, report, res, mr } = run(scenario(W, W, "mode: postcopy, bandwidth: 4KiB, rtt: 0"));
    expect(report.check.dataErrors).toBe(0);
    expect(report.check.valuesRead).toBe(2 * W);
    expect(res.status).toBe("completed");
    const uffd = mr.migration.userfaultfd!;
    // W data pages plus the 4 guest page-table pages of their walk (PML4, PDPT, PD, PT), each once; the second pass none.
    expect(uffd.stats.uffd_missing_faults).toBe(W + 4);
    expect(res.postcopyFaults).toBe(W + 4);
    expect(res.postcopyFaultLatency).toBeCloseTo(((W + 4) * NORMAL_PAGE_BYTES) / 4096, 6);
    // The VM now runs on the destination's QEMU; the source's process is gone.
    expect(e.machine.vms[0]!.retired.length).toBe(1);
    expect(e.machine.vms[0]!.retired[0]!.mm.dead).toBe(true);
    expect(res.pagesSent).toBe(res.postcopyFaults + res.postcopyBackgroundPages);
    expect(res.pagesSent).toBe(mr.migration.npages);
  });

  test("a fast link with a round trip: background pages arrive first and spare their faults", () => {
    const W = 256;
    const { report, res, mr } = run(scenario(W, W, "mode: postcopy, bandwidth: 1GiB, rtt: 1000"));
    expect(report.check.dataErrors).toBe(0);
    const faults = mr.migration.userfaultfd!.stats.uffd_missing_faults;
    expect(faults).toBeLessThan(W + 4);
    expect(faults).toBe(res.postcopyFaults);
    expect(res.postcopyFaultLatencyMax).toBeGreaterThanOrEqual(0.001);
  });
});

/** A guest writing at random over a 1 MiB working set, each access 10 µs of model time (cost.data_access 30,000 cycles). */
function precopy(migrate: string, accesses: number, writeRatio: number, dataAccess = 30000): string {
  return precopyScenario({ migrate, accesses, writeRatio, dataAccess, ram: "32MiB", workingSet: "1MiB" });
}

describe("pre-copy", () => {
  test("each round sends what was dirtied during the one before; converges under the downtime limit; no value lost", () => {
    const { report, res } = run(precopy("bandwidth: 4MiB, downtimeLimit: 300", 60_000, 0.05));
    expect(report.check.dataErrors).toBe(0);
    expect(res.status).toBe("completed");
    expect(res.forced).toBe(false);
    const it = res.iterations;
    expect(it[0]!.pagesSent).toBe(8192); // the bulk stage: every page of 32 MiB
    for (let k = 1; k < it.length; k++) expect(it[k]!.pagesSent).toBe(it[k - 1]!.dirtyPages);
    // The last copy fitted the limit: bytes left under bandwidth x downtime-limit.
    expect(it[it.length - 2]!.remaining).toBeLessThan(4 * 2 ** 20 * 0.3);
    expect(res.pagesSent).toBe(it.reduce((n, r) => n + r.pagesSent, 0));
  });

  test("a dirty rate above the bandwidth never converges without auto-converge; with it the throttle brings it under", () => {
    // 100 µs per access, 2,000 writes/s over 256 pages: every round of ~2 s finds nearly all 256 dirty, above the 64 that fit 500 ms.
    const scen = (ac: string) => precopy(`bandwidth: 512KiB, downtimeLimit: 500, maxIterations: 8${ac}`, 200_000, 0.2, 300_000);
    const off = run(scen(""));
    expect(off.report.check.dataErrors).toBe(0);
    expect(off.res.forced).toBe(true);
    expect(off.res.maxThrottle).toBe(0);
    const on = run(scen(", autoConverge: true, throttleInitial: 99"));
    expect(on.report.check.dataErrors).toBe(0);
    expect(on.res.forced).toBe(false);
    expect(on.res.maxThrottle).toBe(99);
    expect(on.res.throttledTime).toBeGreaterThan(0);
  });
});
