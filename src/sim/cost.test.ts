// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { COST_EVENTS, applyCost, costTable } from "./cost.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

const yaml = (cost = "{}") => `seed: 4
host: {ram: 64MiB, swap: 128MiB, thp: never}
cost: ${cost}
vms:
  - name: vm0
    ram: 128MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 96MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 20000, writeRatio: 0.3}
`;

describe("cost model", () => {
  const base = new Engine(loadScenario(yaml(), "c.yaml")).run();

  test("the total is the sum of the breakdown, for the run, each VM and the native baseline", () => {
    const sum = (b: Record<string, number>) => Object.values(b).reduce((a, v) => a + v, 0);
    expect(sum(base.cost.breakdown)).toBe(base.cost.cycles);
    expect(sum(base.vms[0]!.cost.breakdown)).toBe(base.vms[0]!.cost.cycles);
    expect(sum(base.native!.breakdown)).toBe(base.native!.cycles);
  });

  test("changing one cost changes the total by exactly that cost times its count", () => {
    const more = new Engine(loadScenario(yaml("{vm_exit: 1200, swap_in: 6000}"), "c.yaml")).run();
    const exits = base.cost.counts.vm_exit!;
    const swapIns = base.cost.counts.swap_in!;
    expect(exits).toBeGreaterThan(0);
    expect(swapIns).toBeGreaterThan(0);
    expect(more.cost.counts).toEqual(base.cost.counts);
    expect(more.cost.cycles - base.cost.cycles).toBe(exits * (1200 - 1100) + swapIns * (6000 - 5500));
  });

  test("the native baseline runs the same guest workload: same guest faults and accesses, no exit, no host fault", () => {
    const n = base.vms[0]!.native!;
    expect(n.counts.guest_page_fault).toBe(base.vms[0]!.guest.pgfault);
    expect(n.counts.data_access).toBe(base.accesses);
    expect(n.counts.vm_exit ?? 0).toBe(0);
    expect(n.counts.host_fault ?? 0).toBe(0);
    // A native walk reads only guest tables: fewer reads than the nested walks of the VM.
    expect(n.counts.table_read).toBeLessThan(base.vms[0]!.cost.counts.table_read!);
    expect(base.vms[0]!.overheadRatio).toBeCloseTo(base.vms[0]!.cost.cycles / n.cycles - 1, 10);
    expect(base.overheadRatio).toBeGreaterThan(0);
  });

  test("unknown events and negative costs are refused with the list of known ones", () => {
    expect(() => costTable({ vmexit: 5 })).toThrow(/cost\.vmexit: no such event; known events: tlb_hit/);
    expect(() => costTable({ vm_exit: -1 })).toThrow(/non-negative/);
    expect(applyCost(costTable({}), { vm_exit: 2 }).cycles).toBe(2 * COST_EVENTS.find((e) => e.name === "vm_exit")!.cycles);
  });
});
