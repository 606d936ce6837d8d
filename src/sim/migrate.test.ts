// SPDX-License-Identifier: MIT
// Live migration end to end: the guest moves to the destination QEMU and every value it wrote
// reads back there; post-copy faults once per page it touches that the background stream did
// not bring first, each waiting one round trip plus the page's transfer.
import { describe, expect, test } from "vitest";
import { NORMAL_PAGE_BYTES } from "../qemu/ram_transfer.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

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
