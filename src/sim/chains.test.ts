// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import type { SimEvent } from "../hw/events.js";
import { ChainCollector } from "./chains.js";

const HVA = 0x7fff00000000;
const ev = (kind: string, f: Record<string, number | string> = {}): SimEvent => ({ kind, t: 0, ...f });

/** The events shrink_folio_list() emits for one anon page, in the model's order (page i: pfn 100 + i, slot i). */
function eviction(i: number): SimEvent[] {
  const pfn = 100 + i;
  const hva = HVA + i * 4096;
  const range = { start: hva, end: hva + 4096 };
  return [
    ev("host.rmap_walk", { pfn, mm: 1, hva, reads: 4 }),
    ev("host.notifier.clear_flush_young", { mm: 1, ...range, young: 0 }),
    ev("host.folio_references", { pfn, decision: "reclaim" }),
    ev("host.swap_alloc", { pfn, slot: i, free: 10 }),
    ev("host.rmap_walk", { pfn, mm: 1, hva, reads: 4 }),
    ev("host.notifier.start", { mm: 1, ...range, event: "clear" }),
    ev("kvm.notifier_zap", { vm: "vm0", ...range, zapped: 1 }),
    ev("kvm.remote_tlb_flush", { vm: "vm0", ipi: 0 }),
    ev("host.rmap_remove", { pfn, mm: 1, hva, nr: 1 }),
    ev("host.unmap", { pfn, mm: 1, hva, slot: i, ok: 1 }),
    ev("host.notifier.end", { mm: 1, ...range, event: "clear" }),
    ev("host.swap_out", { pfn, slot: i, mm: 1, hva }),
    ev("host.free", { pfn, order: 0, free: 11 }),
  ];
}

function refault(i: number): SimEvent[] {
  const hva = HVA + i * 4096;
  return [
    ev("kvm.exit", { vcpu: 0, reason: "EPT_VIOLATION", gpa: i * 4096 }),
    ev("host.fault", { mm: 1, hva, write: 1 }),
    ev("host.swap_in", { pfn: 9, slot: i }),
    ev("host.swap_map", { mm: 1, hva, pfn: 9, slot: i, major: 1, write: 1 }),
    ev("kvm.spte_install", { gfn: i, level: 1, pfn: 9 }),
    ev("kvm.entry", { vcpu: 0 }),
  ];
}

const faultIn = [
  ev("kvm.exit", { vcpu: 0, reason: "EPT_VIOLATION", gpa: 0 }),
  ev("host.fault", { mm: 1, hva: HVA, write: 1 }),
  ev("kvm.spte_install", { gfn: 0, level: 1, pfn: 100 }),
  ev("kvm.entry", { vcpu: 0 }),
];

function feed(c: ChainCollector, pages: number, refaulted: number): void {
  for (const e of faultIn) c.onEvent(e);
  c.onEvent(ev("host.direct_reclaim", { free: 1, min: 2 }));
  for (let i = 0; i < pages; i++) {
    // Another page's verdict between evictions: not part of the chain.
    c.onEvent(ev("host.rmap_walk", { pfn: 5000 + i, mm: 1, hva: HVA + 5000 * 4096, reads: 4 }));
    for (const e of eviction(i)) c.onEvent(e);
  }
  for (const e of refault(refaulted)) c.onEvent(e);
}

describe("ChainCollector", () => {
  test("the first fault-in, the page's eviction (13 events after the reclaim that began it) and its re-fault", () => {
    const c = new ChainCollector();
    feed(c, 3, 1);
    const r = c.result();
    expect(r.faultIn?.map((e) => e.kind)).toEqual(faultIn.map((e) => e.kind));
    expect(r.eviction?.map((e) => e.kind)).toEqual(["host.direct_reclaim", ...eviction(1).map((e) => e.kind)]);
    expect(r.eviction?.every((e) => e.pfn === undefined || e.pfn === 101)).toBe(true);
    expect(r.refault?.map((e) => e.kind)).toEqual(refault(1).map((e) => e.kind));
    expect(r.rerunFor).toBeNull();
  });

  test("a re-fault of a page evicted after the first 256: named for a second pass, which keeps its eviction", () => {
    const first = new ChainCollector();
    feed(first, 300, 299);
    const r = first.result();
    expect(r.eviction).toBeNull();
    expect(r.rerunFor).toEqual({ mm: 1, hva: HVA + 299 * 4096 });
    const second = new ChainCollector(r.rerunFor);
    feed(second, 300, 299);
    const r2 = second.result();
    expect(r2.eviction?.find((e) => e.kind === "host.swap_out")?.slot).toBe(299);
    expect(r2.rerunFor).toBeNull();
  });

  test("no swap-in: no re-fault and no eviction named", () => {
    const c = new ChainCollector();
    for (const e of faultIn) c.onEvent(e);
    expect(c.result()).toEqual({ faultIn: expect.any(Array), eviction: null, refault: null, rerunFor: null });
  });
});
