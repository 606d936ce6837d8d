// SPDX-License-Identifier: MIT
// The story collector on a real (small) run: nothing is lost (kept + skipped = seen, and
// the last chapter's counts are the whole run's), the budget holds, the first swap-out
// comes with the invalidation that preceded it, and every event kind has a narration.

import { describe, expect, test } from "vitest";
import { EventBus, type SimEvent } from "../hw/events.js";
import { Engine } from "../sim/engine.js";
import { Machine } from "../sim/machine.js";
import { loadScenario } from "../sim/scenario_load.js";
import { F_EPT, F_FREE, FrameTracker, frameMap } from "./frame_map.js";
import { kindDesc, narrate, stageOf } from "./narration.js";
import type { StoryItem } from "./protocol.js";
import { addEvent, StoryCollector } from "./story_collect.js";

const SMALL = `
seed: 3
host: {ram: 24MiB, swap: 64MiB, thp: never}
vms:
  - name: vm0
    ram: 48MiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 32MiB}
          - touch: {name: heap, op: write}
          - touch: {name: heap, op: read}
`;

function collect(maxEvents = 2000) {
  const scenario = loadScenario(SMALL, "small.yaml");
  const bus = new EventBus();
  const all: SimEvent[] = [];
  let machine: Machine | null = null;
  let engine: Engine | null = null;
  const tracker = new FrameTracker();
  const c = new StoryCollector(
    {
      gauges: (): Record<string, number> => (machine ? { nr_free_pages: machine.host.vmstat().nr_free_pages ?? 0 } : {}),
      accesses: () => engine?.accesses ?? 0,
      stepName: (e) => `step ${e.step}`,
      frames: () => (machine ? frameMap(machine, tracker) : null),
    },
    { maxEvents, lead: 12, window: 28, firstWindow: 60 },
  );
  bus.listen((e) => {
    all.push(e);
    tracker.onEvent(e);
    c.onEvent(e);
  });
  machine = new Machine(scenario, bus);
  engine = new Engine(scenario, { onProgress: (d, t) => d > t / 2 && c.arm("half way") }, machine);
  engine.run();
  const items: StoryItem[] = [...c.take(), ...c.finish()];
  return { items, all, c };
}

describe("story collector", () => {
  const { items, all, c } = collect();

  test("kept plus skipped is every event; kept events are in order and exact", () => {
    const evs = items.filter((i) => i.t === "ev");
    const skipped = items.reduce((a, i) => a + (i.t === "gap" ? i.skipped : 0), 0);
    expect(c.seen).toBe(all.length);
    expect(evs.length + skipped).toBe(all.length);
    expect(evs.length).toBe(c.kept);
    for (let i = 1; i < evs.length; i++) expect(evs[i]!.n).toBeGreaterThan(evs[i - 1]!.n);
    for (const e of evs) expect(e.e).toBe(all[e.n]);
  });

  test("a chapter's counts plus the events kept after it give the next chapter's counts; the last one is the whole run", () => {
    const chapters = items.flatMap((it, i) => (it.t === "chapter" ? [i] : []));
    const total: Record<string, number> = {};
    for (const e of all) total[e.kind] = (total[e.kind] ?? 0) + 1;
    const last = items[chapters[chapters.length - 1]!] as Extract<StoryItem, { t: "chapter" }>;
    expect(last.counts).toEqual(total);
    for (let k = 0; k + 1 < chapters.length; k++) {
      const from = items[chapters[k]!] as Extract<StoryItem, { t: "chapter" }>;
      const to = items[chapters[k + 1]!] as Extract<StoryItem, { t: "chapter" }>;
      const counts = { ...from.counts };
      const sums = { ...from.sums };
      for (let i = chapters[k]! + 1; i < chapters[k + 1]!; i++) {
        const it = items[i]!;
        if (it.t === "ev") addEvent(counts, sums, it.e);
        if (it.t === "gap") for (const [kind, n] of Object.entries(it.byKind)) counts[kind] = (counts[kind] ?? 0) + n;
      }
      expect(counts).toEqual(to.counts);
    }
  });

  test("the first swap-out is kept with the notifier invalidation and KVM's zap before it", () => {
    const evs = items.flatMap((i) => (i.t === "ev" ? [i] : []));
    const out = evs.findIndex((i) => i.e.kind === "host.swap_out");
    expect(out).toBeGreaterThan(0);
    expect(all.findIndex((e) => e.kind === "host.swap_out")).toBe(evs[out]!.n);
    const before = evs.slice(Math.max(0, out - 10), out).map((i) => i.e.kind);
    expect(before).toContain("host.notifier.start");
    expect(before).toContain("kvm.notifier_zap");
    expect(before.indexOf("host.notifier.start")).toBeLessThan(before.indexOf("kvm.notifier_zap"));
  });

  test("the budget holds: no window opens once maxEvents are kept", () => {
    const small = collect(100);
    expect(small.c.kept).toBeLessThanOrEqual(100 + 60);
    expect(small.c.seen).toBe(small.all.length);
  });

  test("every kind in the run has its own narration, kernel function and stage", () => {
    const kinds = new Set(all.map((e) => e.kind));
    for (const k of kinds) {
      expect(kindDesc(k).mirrors, k).not.toBe("");
      expect(stageOf(k), k).not.toBe("other");
    }
    const zap = all.find((e) => e.kind === "kvm.notifier_zap")!;
    expect(narrate(zap).correction).toContain("never hears");
    const start = all.find((e) => e.kind === "host.notifier.start")!;
    expect(narrate(start).correction).toContain("change_pte()");
    expect(narrate(start).mirrors).toBe("mmu_notifier_invalidate_range_start()");
  });

  test("chapters carry a map of host frames by state", () => {
    const last = items.filter((i) => i.t === "chapter").pop() as Extract<StoryItem, { t: "chapter" }>;
    expect(last.frames?.length).toBe((24 * 2 ** 20) / 4096);
    expect(last.frames!.some((s) => s === F_FREE)).toBe(true);
    expect(last.frames!.some((s) => s === F_EPT)).toBe(true);
  });
});
