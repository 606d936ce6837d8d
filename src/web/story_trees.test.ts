// SPDX-License-Identifier: MIT
// The story's tree panels on a real (small) run, under EPT, NPT and shadow paging: at every
// chapter the guest tree's leaf is the frame the guest's own last PTE write put there, and
// at the end KVM's leaf is what the TDP MMU's lookup() (or QEMU's mapping, under shadow)
// gives; the EPT leaf of the followed page comes and goes as the host reclaims it; and
// taking the snapshots does not change the run.

import { describe, expect, test } from "vitest";
import { EventBus, type SimEvent } from "../hw/events.js";
import { entryPfn, PTE_P } from "../hw/x86_pte.js";
import { TdpMmu } from "../kvm/tdp_mmu.js";
import { Engine } from "../sim/engine.js";
import { Machine } from "../sim/machine.js";
import { loadScenario } from "../sim/scenario_load.js";
import type { StoryItem, StoryTrees } from "./protocol.js";
import { StoryCollector } from "./story_collect.js";
import { FocusTracker, hostFrameOf, storyTrees, treeChanges } from "./story_trees.js";

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

type Chapter = Extract<StoryItem, { t: "chapter" }>;

function collect(mmu: string, snapshots = true) {
  const scenario = loadScenario(SMALL, "small.yaml", { overrides: { "vms[0].mmu": mmu } });
  const bus = new EventBus();
  let machine: Machine | null = null;
  const focus = new FocusTracker(() => machine);
  // The guest's own record: the gfn its last level-1 PTE write put at each (pid, gva) (absent or -1: none).
  const written = new Map<string, number>();
  const mapped = () => {
    const f = focus.focus;
    return f ? (written.get(`${f.pid}:${f.gva}`) ?? -1) : -1;
  };
  const expected: number[] = [];
  const c = new StoryCollector(
    {
      gauges: () => ({}),
      accesses: () => 0,
      stepName: (e) => `step ${e.step}`,
      ...(snapshots
        ? {
            trees: () => {
              const t = machine ? storyTrees(machine, focus.focus) : null;
              if (t) expected.push(mapped());
              return t;
            },
          }
        : {}),
    },
    { maxEvents: 3000, lead: 12, window: 28, firstWindow: 60 },
  );
  const all: SimEvent[] = [];
  bus.listen((e) => {
    all.push(e);
    focus.onEvent(e);
    if (e.kind === "guest.pte_write" && e.level === 1) {
      const lo = Number(e.lo);
      written.set(`${e.pid}:${e.gva}`, (lo & PTE_P) !== 0 ? entryPfn(lo, Number(e.hi)) : -1);
    }
    c.onEvent(e);
  });
  machine = new Machine(scenario, bus);
  const engine = new Engine(scenario, {}, machine);
  const report = engine.run();
  const items: StoryItem[] = [...c.take(), ...c.finish()];
  const chapters = items.filter((i): i is Chapter => i.t === "chapter");
  return { machine, focus, items, chapters, expected, guestGfn: mapped(), report, all };
}

describe.each(["ept", "npt", "shadow"])("story trees under %s", (mmu) => {
  const run = collect(mmu);
  const withTrees = run.chapters.filter((ch) => ch.trees !== undefined);

  test("the followed address is the first page the guest faulted in, and chapters after it carry both trees", () => {
    const first = run.all.find((e) => e.kind === "guest.pgfault")!;
    expect(run.focus.focus).not.toBeNull();
    expect(run.focus.focus!.gva).toBe(Number(first.gva) - (Number(first.gva) % 4096));
    expect(withTrees.length).toBeGreaterThan(3);
    const last = run.chapters[run.chapters.length - 1]!.trees!;
    expect(last.guest.levels.map((l) => l.name)).toEqual(["PML4E", "PDPTE", "PDE", "PTE"]);
    expect(last.second.levels.length).toBeGreaterThan(0);
    expect(last.second.levels[0]!.name).toBe(mmu === "ept" ? "EPT PML4E" : mmu === "npt" ? "NPT PML4E" : "shadow PML4E");
    for (const l of last.guest.levels) expect(l.present).toBeGreaterThan(0);
  });

  test("at every chapter the guest leaf is the frame the guest's own last PTE write mapped", () => {
    // What the guest had written when each snapshot was taken, in snapshot order.
    expect(run.expected.length).toBe(withTrees.length);
    let unreadable = 0;
    withTrees.forEach((ch, i) => {
      const t = ch.trees!;
      // Guest tables are read from host frames, the swap cache and the swap device; the only gap is a
      // snapshot taken inside a host swap-in, between freeing the slot and installing the page.
      if (t.guest.end.includes("cannot be read")) {
        expect(t.guest.end).toContain("mid swap-in");
        unreadable++;
        return;
      }
      expect(t.guest.leaf, `chapter at event ${ch.n}`).toBe(run.expected[i]);
    });
    expect(unreadable).toBeLessThanOrEqual(2);
  });

  test("at the end KVM's leaf is what the library's own lookup gives", () => {
    const m = run.machine;
    const vm = m.vms[0]!;
    const t = storyTrees(m, run.focus.focus) as StoryTrees;
    expect(t.guest.leaf).toBe(run.guestGfn);
    expect(t.guest.leaf).toBeGreaterThanOrEqual(0);
    const tdp = vm.qemu.kvm.mmu;
    if (tdp instanceof TdpMmu) {
      const found = tdp.lookup(t.guest.leaf);
      expect(t.second.leaf).toBe(found ? entryPfn(tdp.leafLo, tdp.leafHi) : -1);
      expect(t.second.addr).toBe(t.guest.leaf * 4096);
    } else if (t.second.leaf >= 0) {
      // A shadow leaf maps the host frame QEMU's tables hold for the guest frame (no stale mapping).
      expect(hostFrameOf(m, vm, t.guest.leaf)).toEqual({ pfn: t.second.leaf });
    }
  });

  test("snapshots only read: the run's report is the same without them", () => {
    const bare = collect(mmu, false);
    expect(bare.report).toEqual(run.report);
  });
});

test("under EPT the followed page's leaf appears after its fault and goes with the notifier's zap", () => {
  const { chapters } = collect("ept");
  const changes = chapters
    .map((ch, i) => ({ ch, prev: chapters[i - 1]?.trees?.second }))
    .filter((x) => x.ch.trees !== undefined)
    .map((x) => treeChanges(x.prev, x.ch.trees!.second));
  const leafChanges = changes.map((c) => c[c.length - 1]);
  expect(leafChanges).toContain("gone");
  const leaves = chapters.flatMap((ch) => (ch.trees ? [ch.trees.second.leaf] : []));
  expect(leaves.some((l) => l >= 0)).toBe(true);
  expect(leaves.some((l) => l < 0)).toBe(true);
});
