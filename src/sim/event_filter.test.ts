// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import type { SimEvent } from "../hw/events.js";
import { EventFilter, eventText, matchKinds } from "./event_filter.js";

const ev = (kind: string, f: Record<string, number | string> = {}): SimEvent => ({ kind, t: 0, ...f });
const HVA = 0x7fff00002000;

/** A page's fault-in, eviction and swap-in, with another page's events between. */
const STREAM = [
  ev("kvm.exit", { vcpu: 0, reason: "EPT_VIOLATION", gpa: 0x2008 }),
  ev("host.fault", { mm: 1, hva: HVA, write: 1 }),
  ev("host.rmap_add", { pfn: 7, mm: 1, hva: HVA, nr: 1 }),
  ev("kvm.faultin", { vcpu: 0, gfn: 2, hva: HVA, pfn: 7, writable: 1 }),
  ev("kvm.spte_install", { gfn: 2, level: 1, pfn: 7 }),
  ev("kvm.entry", { vcpu: 0 }),
  ev("host.rmap_add", { pfn: 8, mm: 1, hva: HVA + 4096, nr: 1 }),
  ev("host.swap_alloc", { pfn: 7, slot: 5, free: 9 }),
  ev("kvm.notifier_zap", { vm: "vm0", start: HVA, end: HVA + 4096, zapped: 1 }),
  ev("kvm.remote_tlb_flush", { vm: "vm0", ipi: 0 }),
  ev("host.unmap", { pfn: 7, mm: 1, hva: HVA, slot: 5, ok: 1 }),
  ev("host.swap_out", { pfn: 7, slot: 5, mm: 1, hva: HVA }),
  ev("host.free", { pfn: 7, order: 0, free: 10 }),
  ev("host.page_alloc", { pfn: 7, order: 0, purpose: "anon", free: 9 }),
  ev("host.rmap_add", { pfn: 7, mm: 1, hva: HVA + 8192, nr: 1 }),
  ev("host.swap_in", { pfn: 9, slot: 5 }),
  ev("host.swap_map", { mm: 1, hva: HVA, pfn: 9, slot: 5, major: 1, write: 1 }),
];

const kept = (f: EventFilter) => STREAM.map((e, i) => (f.keep(e) ? i : -1)).filter((i) => i >= 0);

describe("EventFilter", () => {
  test("kinds: exact names and layer globs", () => {
    expect(kept(new EventFilter({ kinds: ["host.fault", "kvm.*"] }))).toEqual([0, 1, 3, 4, 5, 8, 9]);
    expect(matchKinds("kvm.nope")).toEqual([]);
  });

  test("range: byte addresses (gpa, gva, hva, range start) in [lo, hi)", () => {
    expect(kept(new EventFilter({ range: { lo: 0x2000, hi: 0x3000 } }))).toEqual([0]);
    expect(kept(new EventFilter({ range: { lo: HVA + 4096, hi: HVA + 8192 } }))).toEqual([6]);
  });

  test("first N, after the other filters", () => {
    expect(kept(new EventFilter({ kinds: ["host.*"], first: 3 }))).toEqual([1, 2, 6]);
  });

  test("one page's life by gpa: its gfn, then its hva, frame and slot; not the frame once freed and reused", () => {
    expect(kept(new EventFilter({ page: { space: "gpa", addr: 0x2fff } }))).toEqual([0, 3, 4, 7, 8, 9, 10, 11, 12, 15, 16]);
  });

  test("one page's life by hva: the same events from the host fault on", () => {
    expect(kept(new EventFilter({ page: { space: "hva", addr: HVA + 5 } }))).toEqual([1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15, 16]);
  });

  test("text: addresses and page numbers in hex, other numbers in decimal", () => {
    expect(eventText({ ...STREAM[3]!, t: 42 })).toBe("42 kvm.faultin vcpu=0 gfn=0x2 hva=0x7fff00002000 pfn=0x7 writable=1");
  });
});
