// SPDX-License-Identifier: MIT
// The frame map's free cells are the buddy allocator's free pages, pristine blocks included
// (whole max-order blocks never handed out carry no PG_buddy), on a fresh machine and after a run.

import { describe, expect, test } from "vitest";
import { EventBus } from "../hw/events.js";
import { Engine } from "../sim/engine.js";
import { Machine } from "../sim/machine.js";
import { loadScenario } from "../sim/scenario_load.js";
import { F_FREE, F_OTHER, FrameTracker, frameMap } from "./frame_map.js";

const TEXT = `
seed: 3
host: {ram: 64MiB, swap: 64MiB, thp: never}
vms:
  - name: vm0
    ram: 48MiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 8MiB}
          - touch: {name: heap, op: write}
`;

const count = (cells: Uint8Array, v: number) => cells.reduce((a, c) => a + (c === v ? 1 : 0), 0);

describe("frame map", () => {
  test("free cells equal nr_free_pages, fresh and after a run, and no untouched frame is 'other'", () => {
    const scenario = loadScenario(TEXT, "t.yaml");
    const bus = new EventBus();
    const tracker = new FrameTracker();
    bus.listen((e) => tracker.onEvent(e));
    const m = new Machine(scenario, bus);
    const fresh = frameMap(m, tracker);
    expect(fresh.step).toBe(1);
    expect(fresh.cells.length).toBe(16384);
    expect(count(fresh.cells, F_FREE)).toBe(m.host.vmstat().nr_free_pages);
    new Engine(scenario, {}, m).run();
    const after = frameMap(m, tracker);
    expect(count(after.cells, F_FREE)).toBe(m.host.vmstat().nr_free_pages);
    expect(count(after.cells, F_OTHER)).toBeLessThan(64);
  });
});
