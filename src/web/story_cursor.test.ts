// SPDX-License-Identifier: MIT
// The story's cursor on a real run (a 48 MiB guest on a 24 MiB host, into swap and back):
// the objects of each event of the first reclaim chain and of the first re-fault from
// swap, their chain positions, and the page the worker's follower reads trees for.

import { describe, expect, test } from "vitest";
import { EventBus, type SimEvent } from "../hw/events.js";
import { Engine } from "../sim/engine.js";
import { Machine } from "../sim/machine.js";
import { loadScenario } from "../sim/scenario_load.js";
import type { StoryItem } from "./protocol.js";
import { StoryCollector } from "./story_collect.js";
import { chainAt, cursorAt, cursorPage, eventObjects, pinnedFollow } from "./story_cursor.js";
import { type Follow, PageFollower } from "./story_follow.js";

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

/** The run's events, and the follower's answer right after each event of the first swap-out's chain and of the first re-fault. */
function run() {
  const sc = loadScenario(SMALL, "small.yaml");
  const bus = new EventBus();
  const evs: SimEvent[] = [];
  let machine: Machine | null = null;
  const follower = new PageFollower(() => machine);
  const follows = new Map<number, Follow | undefined>();
  let firstOut = -1;
  let swapIns = 0;
  /** At every host swap-out: [KVM's leaf, the guest's leaf gfn, the followed gpa, the page's role]. */
  const outs: [number, number, number, string][] = [];
  bus.listen((e) => {
    follower.onEvent(e);
    evs.push(e);
    const before = firstOut < 0;
    if (e.kind === "host.swap_out" && firstOut < 0) firstOut = evs.length - 1;
    if (e.kind === "host.swap_in") swapIns++;
    if (e.kind === "host.swap_out" && !before) {
      const f = follower.follow(e, false)!;
      outs.push([f.trees.second?.leaf ?? -2, f.trees.guest?.leaf ?? -1, f.page.gpa, f.page.role]);
    }
    // Live snapshots around the first swap-out (the 12 events before it) and through the first re-fault.
    if ((before && e.kind !== "guest.pte_write") || swapIns === 1) follows.set(evs.length - 1, follower.follow(e, false));
  });
  machine = new Machine(sc, bus);
  new Engine(sc, {}, machine).run();
  return { evs, follows, outs };
}

const { evs, follows, outs } = run();
const out = evs.findIndex((e) => e.kind === "host.swap_out");
const refault = evs.findIndex((e) => e.kind === "host.swap_in");
const HVA = 140737302757376;
const near = (i: number, kind: string) => {
  for (let j = i; j >= i - 12; j--) if (evs[j]!.kind === kind) return j;
  throw new Error(`no ${kind} before ${i}`);
};

describe("eventObjects on the first reclaim chain", () => {
  test("the chain's events, exactly as the run emits them", () => {
    expect(evs[out]).toMatchObject({ pfn: 6, slot: 1, mm: 1, hva: HVA });
    expect(eventObjects(evs[near(out, "host.folio_references")]!)).toEqual({
      pfn: 6,
      lru: { from: "inactive_anon", to: "", why: "isolated for reclaim" },
    });
    expect(eventObjects(evs[near(out, "host.swap_alloc")]!)).toEqual({ pfn: 6, swap: { slot: 1, op: "alloc", device: "host" } });
    expect(eventObjects(evs[near(out, "host.rmap_walk")]!)).toEqual({
      pfn: 6,
      mm: 1,
      hva: HVA,
      rmap: { op: "walk", pfn: 6, mm: 1, hva: HVA },
    });
    expect(eventObjects(evs[near(out, "host.notifier.start")]!)).toEqual({ mm: 1, hva: HVA, range: { start: HVA, end: HVA + 4096 } });
    // KVM's zap carries the gfn of the range (kvm_gfn_range.start): the host half of the chain has no gpa.
    expect(eventObjects(evs[near(out, "kvm.notifier_zap")]!)).toEqual({
      gpa: 0x100000,
      hva: HVA,
      range: { start: HVA, end: HVA + 4096 },
      entry: { tables: "kvm", level: 1, index: 256, before: "", after: "zapped (not present)" },
    });
    expect(eventObjects(evs[near(out, "kvm.remote_tlb_flush")]!)).toEqual({ tlbFlush: true });
    expect(eventObjects(evs[near(out, "host.unmap")]!)).toEqual({
      pfn: 6,
      mm: 1,
      hva: HVA,
      swap: { slot: 1, op: "unmap", device: "host" },
      entry: { tables: "host", level: 1, index: (HVA / 4096) % 512, before: "maps host frame 0x6", after: "swap entry (slot 1)" },
    });
    const young = near(near(out, "host.folio_references"), "host.notifier.clear_flush_young");
    expect(eventObjects(evs[young]!)).toEqual({ mm: 1, hva: HVA, range: { start: HVA, end: HVA + 4096 } });
    expect(eventObjects(evs[near(out, "host.rmap_remove")]!)).toEqual({
      pfn: 6,
      mm: 1,
      hva: HVA,
      rmap: { op: "remove", pfn: 6, mm: 1, hva: HVA },
    });
    expect(eventObjects(evs[near(out, "host.notifier.end")]!)).toEqual({ mm: 1, hva: HVA, range: { start: HVA, end: HVA + 4096 } });
    expect(eventObjects(evs[out]!)).toEqual({ pfn: 6, mm: 1, hva: HVA, swap: { slot: 1, op: "out", device: "host" } });
    expect(eventObjects(evs[out + 1]!)).toEqual({ pfn: 6, lru: { from: "", to: "", why: "back to the buddy allocator" } });
  });

  test("one chain from the aging walk to the frame's free, and the swap-out's gpa comes from KVM's zap", () => {
    const c = chainAt(evs, out)!;
    expect(c.chain).toBe("reclaim");
    expect(c.links.map((l) => l.kinds[0])).toEqual([
      "host.rmap_walk",
      "host.folio_references",
      "host.swap_alloc",
      "host.rmap_walk",
      "host.notifier.start",
      "kvm.notifier_zap",
      "kvm.remote_tlb_flush",
      "host.rmap_remove",
      "host.notifier.end",
      "host.swap_out",
      "host.free",
    ]);
    expect(c.link).toBe(9);
    expect(c.members.map((j) => evs[j]!.kind)).toEqual([
      "host.rmap_walk",
      "host.notifier.clear_flush_young",
      "host.folio_references",
      "host.swap_alloc",
      "host.rmap_walk",
      "host.notifier.start",
      "kvm.notifier_zap",
      "kvm.remote_tlb_flush",
      "host.rmap_remove",
      "host.unmap",
      "host.notifier.end",
      "host.swap_out",
      "host.free",
    ]);
    expect(c.members.map((j) => chainAt(evs, j)!.link)).toEqual([0, 0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10]);
    expect(c.page).toEqual({ pfn: 6, hva: HVA, mm: 1, slot: 1, gpa: 0x100000 });
    expect(c.hit.every((x) => x)).toBe(true);
    expect(cursorPage(evs, out).objects).toMatchObject({ gpa: 0x100000, hva: HVA, pfn: 6 });
    // Another page's aging just before is in no chain of this page.
    expect(chainAt(evs, c.members[0]! - 1)?.page.pfn).not.toBe(6);
  });

  test("the follower reads the evicted page's trees: QEMU's PTE a swap entry, KVM's leaf gone, the guest PTE still mapping the gpa", () => {
    const f = follows.get(out)!;
    expect(f.page).toMatchObject({ gpa: 0x100000, hva: HVA });
    const host = f.trees.host!;
    expect(host.levels.at(-1)).toMatchObject({
      level: 1,
      index: (HVA / 4096) % 512,
      mapped: false,
      bits: "swap entry: slot 1 (not present)",
    });
    expect(host.end).toBe("the page is in swap slot 1");
    expect(f.trees.second!.leaf).toBe(-1);
    // Before the unmap the same PTE mapped frame 6, and before the zap KVM's leaf did too.
    const before = follows.get(near(out, "host.rmap_walk"))!;
    expect(before.trees.host!.leaf).toBe(6);
    expect(before.trees.second!.leaf).toBe(6);
    // The first page the host evicts is the guest kernel's PML4 (its first CR3 load, gfn 256): no gva maps it as data.
    expect(f.page).toMatchObject({ pid: -1, gva: -1, role: "the top-level page table of guest pid 0" });
    expect(f.trees.guest).toBeNull();
  });
});

test("at every later swap-out the trees follow the evicted page: KVM's leaf gone, the guest's PTE still mapping its gpa", () => {
  expect(outs.length).toBe(8219);
  expect(outs.filter(([kvm]) => kvm !== -1)).toEqual([]);
  const data = outs.filter(([, g]) => g >= 0);
  expect(data.length).toBe(8192);
  expect(data.filter(([, g, gpa]) => g * 4096 !== gpa)).toEqual([]);
  // The rest hold the guest's own page tables (no gva maps them as data), named from the guest's table writes; and
  // gfn 0x101, the guest's zero page (allocated at boot after swapper_pg_dir, guest/kernel.ts), which no event names.
  expect(outs.filter(([, g, , role]) => g < 0 && role === "")).toEqual([[-1, -1, 0x101000, ""]]);
  expect(outs.filter(([, g, , role]) => g < 0 && role !== "").length).toBe(26);
});

describe("the first re-fault from swap", () => {
  const exit = (() => {
    for (let j = refault; j >= 0; j--) if (evs[j]!.kind === "kvm.exit") return j;
    return -1;
  })();

  test("exit -> host fault -> swap-in -> map -> install -> resume, one chain", () => {
    const c = chainAt(evs, refault)!;
    expect(c.chain).toBe("refault");
    expect(c.links.map((l) => l.kinds[0])).toEqual([
      "kvm.exit",
      "host.fault",
      "host.page_alloc",
      "host.rmap_add",
      "kvm.faultin",
      "kvm.spte_install",
      "kvm.entry",
    ]);
    expect(c.members[0]).toBe(exit);
    expect(c.members.map((j) => evs[j]!.kind)).toEqual([
      "kvm.exit",
      "host.fault",
      "host.page_alloc",
      "host.refault",
      "host.lru_add",
      "host.swap_in",
      "host.swap_free",
      "host.rmap_add",
      "host.swap_map",
      "kvm.faultin",
      "kvm.spte_install",
      "kvm.entry",
    ]);
    expect(c.members.map((j) => chainAt(evs, j)!.link)).toEqual([0, 1, 2, 2, 2, 2, 2, 3, 3, 4, 5, 6]);
    expect(c.page).toEqual({ gpa: 258 * 4096, hva: HVA + 0x2000, mm: 1, pfn: 6, slot: 3 });
  });

  test("each event's objects", () => {
    const at = (k: string) => c0.members.find((j) => evs[j]!.kind === k)!;
    const c0 = chainAt(evs, refault)!;
    expect(eventObjects(evs[exit]!)).toEqual({ gpa: 1058808 });
    expect(eventObjects(evs[at("host.fault")]!)).toEqual({ mm: 1, hva: HVA + 0x2000 });
    expect(eventObjects(evs[at("host.refault")]!)).toEqual({
      pfn: 6,
      lru: { from: "", to: "active_anon", why: "refault distance within the workingset" },
    });
    expect(eventObjects(evs[at("host.page_alloc")]!)).toEqual({ pfn: 6 });
    expect(eventObjects(evs[at("host.lru_add")]!)).toEqual({
      pfn: 6,
      lru: { from: "", to: "active_anon", why: "a new page joins the LRU" },
    });
    expect(eventObjects(evs[at("host.rmap_add")]!)).toEqual({
      pfn: 6,
      mm: 1,
      hva: HVA + 0x2000,
      rmap: { op: "add", pfn: 6, mm: 1, hva: HVA + 0x2000 },
    });
    expect(eventObjects(evs[at("kvm.entry")]!)).toEqual({});
    expect(eventObjects(evs[at("host.swap_in")]!)).toEqual({ pfn: 6, swap: { slot: 3, op: "in", device: "host" } });
    expect(eventObjects(evs[at("host.swap_free")]!)).toEqual({ swap: { slot: 3, op: "free", device: "host" } });
    expect(eventObjects(evs[at("host.swap_map")]!)).toEqual({
      pfn: 6,
      mm: 1,
      hva: HVA + 0x2000,
      swap: { slot: 3, op: "map", device: "host" },
      entry: {
        tables: "host",
        level: 1,
        index: ((HVA + 0x2000) / 4096) % 512,
        before: "swap entry (slot 3)",
        after: "maps host frame 0x6, writable",
      },
    });
    expect(eventObjects(evs[at("kvm.faultin")]!)).toEqual({ gpa: 258 * 4096, hva: HVA + 0x2000, pfn: 6 });
    expect(eventObjects(evs[at("kvm.spte_install")]!)).toEqual({
      gpa: 258 * 4096,
      pfn: 6,
      entry: { tables: "kvm", level: 1, index: 258 % 512, before: "", after: "maps host frame 0x6" },
    });
    // Under shadow paging KVM's table index comes from the gva, which the install does not carry.
    expect(eventObjects(evs[at("kvm.spte_install")]!, { mmu: "shadow" }).entry!.index).toBe(-1);
    // After the install the follower's KVM tree maps the gpa to the new frame.
    expect(follows.get(at("kvm.spte_install"))!.trees.second!.leaf).toBe(6);
    expect(follows.get(at("host.swap_map"))!.trees.host!.leaf).toBe(6);
  });
});

describe("the cursor over the story's items (the collector and the follower, as in the worker)", () => {
  const sc = loadScenario(SMALL, "small.yaml");
  const bus = new EventBus();
  let machine: Machine | null = null;
  const follower = new PageFollower(() => machine);
  const c = new StoryCollector({
    gauges: () => ({}),
    accesses: () => 0,
    stepName: (e) => `step ${e.step}`,
    follow: (e, late) => follower.follow(e, late),
  });
  bus.listen((e) => {
    follower.onEvent(e);
    c.onEvent(e);
  });
  machine = new Machine(sc, bus);
  new Engine(sc, {}, machine).run();
  const items: StoryItem[] = [...c.take(), ...c.finish()];
  const posOf = (kind: string) => items.findIndex((it) => it.t === "ev" && it.e.kind === kind);
  const out = posOf("host.swap_out");
  const unmap = posOf("host.unmap");

  test("at the first swap-out: its chain link, its page's trees, read live", () => {
    const k = cursorAt(items, out)!;
    expect(k.chain).toMatchObject({ chain: "reclaim", link: 9 });
    expect(k.objects).toMatchObject({ gpa: 0x100000, pfn: 6, swap: { slot: 1, op: "out" } });
    expect(k.followAt).toBe(out);
    expect(k.follow!.trees.late).toBe(false);
    expect(k.follow!.page).toMatchObject({ gpa: 0x100000, hva: HVA });
    expect(k.follow!.trees.host!.end).toBe("the page is in swap slot 1");
  });

  test("at the unmap: QEMU's PTE before (frame 6) and after (the swap entry)", () => {
    const k = cursorAt(items, unmap)!;
    expect(k.chain!.link).toBe(7);
    expect(k.before!.trees.host!.levels[3]!.bits).toContain("pfn=0x6");
    expect(k.follow!.trees.host!.levels[3]!.bits).toBe("swap entry: slot 1 (not present)");
  });

  test("a chapter start stands on the event after it; a pinned frame keeps its last trees", () => {
    const ch = items.findIndex((it) => it.t === "chapter" && it.reason === "first host.swap_out");
    expect(ch).toBe(out - 1);
    expect(cursorAt(items, ch)!.objects).toEqual(cursorAt(items, out)!.objects);
    const p = pinnedFollow(items, out, { pfn: 6 })!;
    expect(p.at).toBeLessThan(unmap);
    expect(p.follow.trees.host!.leaf).toBe(6);
    expect(pinnedFollow(items, out, { gpa: 0x100000, hva: HVA })!.at).toBe(out);
  });
});

describe("a link no event takes", () => {
  test("a zap that finds no entry (shadow paging, a guest table no spte maps) flushes no TLB: that link is not hit", () => {
    const H = 0x7fff0000;
    const r = { mm: 1, start: H, end: H + 4096 };
    const ev = (kind: string, f: Record<string, number | string>): SimEvent => ({ kind, t: 0, ...f });
    const evs = [
      ev("host.rmap_walk", { pfn: 5, mm: 1, hva: H, reads: 4 }),
      ev("host.notifier.clear_flush_young", { ...r, young: 0 }),
      ev("host.folio_references", { pfn: 5, referenced_ptes: 0, referenced: 1, decision: "reclaim" }),
      ev("host.swap_alloc", { pfn: 5, slot: 1, free: 9 }),
      ev("host.rmap_walk", { pfn: 5, mm: 1, hva: H, reads: 4 }),
      ev("host.notifier.start", { ...r, event: "clear" }),
      ev("kvm.notifier_zap", { vm: "vm0", start: H, end: H + 4096, gfn: 256, zapped: 0 }),
      ev("host.rmap_remove", { pfn: 5, mm: 1, hva: H, nr: 1 }),
      ev("host.unmap", { pfn: 5, mm: 1, hva: H, slot: 1, ok: 1 }),
      ev("host.notifier.end", { ...r, event: "clear" }),
      ev("host.swap_out", { pfn: 5, slot: 1, mm: 1, hva: H }),
      ev("host.free", { pfn: 5, order: 0, free: 10 }),
    ];
    const c = chainAt(evs, 10, "shadow")!;
    expect(c.link).toBe(9);
    expect(c.hit).toEqual([true, true, true, true, true, true, false, true, true, true, true]);
    expect(c.links[5]!.label).toBe("KVM zaps the shadow PTE (spte)");
    // Nothing zapped: the event writes no entry.
    expect(eventObjects(evs[6]!, { mmu: "shadow" }).entry).toBeUndefined();
  });
});
