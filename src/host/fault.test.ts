// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EventBus, type SimEvent } from "../hw/events.js";
import { HOST_EVENTS } from "./host_events.js";
import { ACCESS_SEGV, HostKernel, type HostConfig, type MmuNotifier, type MmuNotifierRange, type NotifierMm } from "./index.js";
import type { Mm } from "./mm_types.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const P = 4096;

function boot(cfg: Partial<HostConfig> = {}) {
  const bus = new EventBus();
  const k = new HostKernel({ ram: 64 * MiB, swap: 0, thp: "never", debugChecks: true, ...cfg }, bus);
  return { k, bus };
}

/** Records every notifier call with the state of the PTE at the time. */
class Recorder implements MmuNotifier {
  readonly log: { op: string; start: number; end: number; event?: string }[] = [];
  constructor(readonly youngAt: Set<number> = new Set()) {}
  invalidateRangeStart(r: MmuNotifierRange): void {
    this.log.push({ op: "start", start: r.start, end: r.end, event: r.event });
  }
  invalidateRangeEnd(r: MmuNotifierRange): void {
    this.log.push({ op: "end", start: r.start, end: r.end, event: r.event });
  }
  clearFlushYoung(_mm: NotifierMm, start: number, end: number): boolean {
    this.log.push({ op: "cfy", start, end });
    return this.youngAt.has(start);
  }
  clearYoung(_mm: NotifierMm, start: number, end: number): boolean {
    return this.youngAt.has(start) && end > start;
  }
  testYoung(_mm: NotifierMm, addr: number): boolean {
    return this.youngAt.has(addr);
  }
  release(_mm: NotifierMm): void {
    this.log.push({ op: "release", start: 0, end: 0 });
  }
}

describe("lazy allocation (SEED-PATHS path 1)", () => {
  it("mmap of 1 GiB touches nothing: RSS 0 and only the top-level table", () => {
    const { k, bus } = boot();
    const mm = k.createProcess("qemu");
    const free = k.nrFreePages;
    const events: SimEvent[] = [];
    bus.listen((e) => events.push(e));
    const hva = k.mmap(mm, GiB, { noreserve: true });
    expect(hva % (2 * MiB)).toBe(0);
    expect(mm.rss).toBe(0);
    expect(mm.rssZeroPage).toBe(0);
    expect(mm.pgtablesBytes).toBe(P);
    expect(k.vmstat().nr_page_table_pages).toBe(1);
    expect(k.nrFreePages).toBe(free);
    expect(events.map((e) => e.kind)).toEqual(["host.mmap"]);
    expect(k.probe(mm, hva).state).toBe("none");
    expect(k.probe(mm, hva).level).toBe(4);
  });

  it("without MAP_NORESERVE, a mapping larger than RAM + swap fails (overcommit heuristic)", () => {
    const { k } = boot({ swap: 32 * MiB });
    const mm = k.createProcess("qemu");
    expect(() => k.mmap(mm, GiB)).toThrow(/ENOMEM/);
    k.mmap(mm, 64 * MiB);
    expect(k.vmstat().committed_as).toBe(16384);
  });

  it("writing 100 distinct pages: RSS +100, pgfault +100, each value reads back", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 16 * MiB);
    const f0 = k.stat.pgfault;
    for (let i = 0; i < 100; i++) expect(k.userAccess(mm, hva + i * P, true, 1000 + i)).toBe(1000 + i);
    expect(mm.rss).toBe(100);
    expect(k.stat.pgfault - f0).toBe(100);
    expect(k.vmstat().nr_inactive_anon).toBe(100);
    // Re-touching faults no more.
    for (let i = 0; i < 100; i++) expect(k.userAccess(mm, hva + i * P, false)).toBe(1000 + i);
    expect(k.stat.pgfault - f0).toBe(100);
    expect(mm.minFlt).toBe(100);
    // One PTE table, one PMD table, one PUD table under the pgd.
    expect(mm.pgtablesBytes).toBe(4 * P);
  });

  it("reading 100 other pages maps the zero page; writing one of them is a COW inside a notifier range", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const rec = new Recorder();
    mm.registerNotifier(rec);
    const hva = k.mmap(mm, 16 * MiB);
    for (let i = 0; i < 100; i++) k.userAccess(mm, hva + i * P, true, 7);
    const f0 = k.stat.pgfault;
    const rss0 = mm.rss;
    const zero = hva + 200 * P;
    for (let i = 0; i < 100; i++) expect(k.userAccess(mm, zero + i * P, false)).toBe(0);
    expect(mm.rss).toBe(rss0);
    expect(mm.rssZeroPage).toBe(100);
    expect(k.stat.pgfault - f0).toBe(100);
    expect(k.probe(mm, zero).zeroPage).toBe(true);
    expect(k.probe(mm, zero).writable).toBe(false);
    // No notifier on first faults.
    expect(rec.log).toEqual([]);
    const target = zero + 5 * P;
    expect(k.userAccess(mm, target, true, 99)).toBe(99);
    expect(mm.rss).toBe(rss0 + 1);
    expect(mm.rssZeroPage).toBe(99);
    expect(k.stat.pgfault - f0).toBe(101);
    expect(rec.log).toEqual([
      { op: "start", start: target, end: target + P, event: "clear" },
      { op: "end", start: target, end: target + P, event: "clear" },
    ]);
    expect(k.userAccess(mm, target, false)).toBe(99);
    expect(k.userAccess(mm, target + P, false)).toBe(0);
  });

  it("emits the path-1 steps in order for a write fault", () => {
    const { k, bus } = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 4 * MiB);
    const kinds: string[] = [];
    bus.listen((e) => kinds.push(e.kind));
    k.userAccess(mm, hva, true, 1);
    // fault, three table pages (pud, pmd, pte), the data page, rmap, lru.
    expect(kinds).toEqual([
      "host.fault",
      "host.page_alloc",
      "host.page_alloc",
      "host.page_alloc",
      "host.page_alloc",
      "host.rmap_add",
      "host.lru_add",
    ]);
  });

  it("an access outside any mapping fails with SIGSEGV", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    expect(k.userAccess(mm, 0x1000_0000, false)).toBe(ACCESS_SEGV);
    expect(k.getUserPages(mm, 0x1000_0000, false)).toEqual({ ok: false, error: "EFAULT" });
  });
});

describe("get_user_pages for secondary MMUs", () => {
  it("a read GUP of an untouched page maps the zero page read-only; a write GUP COWs", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 4 * MiB);
    expect(k.getUserPagesFast(mm, hva, false)).toBeNull();
    const r = k.getUserPages(mm, hva, false);
    expect(r).toEqual({ ok: true, pfn: k.zeroPfn, writable: false, level: 1, major: false });
    expect(k.getUserPagesFast(mm, hva, false)).toBeNull(); // special PTE: fast GUP refuses the zero page
    const w = k.getUserPages(mm, hva, true);
    expect(w.ok && w.writable && w.pfn !== k.zeroPfn).toBe(true);
    expect(k.getUserPagesFast(mm, hva, true)).toEqual({ ok: true, pfn: w.ok ? w.pfn : -1, writable: true, level: 1, major: false });
    expect(k.hostPfnMappingLevel(mm, hva)).toBe(1);
    expect(mm.rss).toBe(1);
  });

  it("a write GUP on a fresh page allocates it writable; GUP touches the folio (mark_page_accessed)", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 4 * MiB);
    const r = k.getUserPages(mm, hva + 3 * P, true);
    if (!r.ok) throw new Error("gup failed");
    expect(r.writable).toBe(true);
    k.getUserPages(mm, hva + 3 * P, false);
    k.getUserPages(mm, hva + 3 * P, false);
    // inactive -> referenced -> active
    expect(k.vmstat().nr_active_anon).toBe(1);
    expect(k.stat.pgactivate).toBe(1);
  });
});

describe("watermarks and sizes", () => {
  it("derives min/low/high as __setup_per_zone_wmarks does", () => {
    const { k } = boot();
    // managed = 16383 pages; min_free_kbytes = int_sqrt(65532*16) = 1023; min = 255;
    // delta = max(255/4, 16383*10/10000) = 63.
    expect(k.minFreeKbytes).toBe(1023);
    expect(k.wmark).toEqual({ min: 255, low: 318, high: 381 });
    const big = new HostKernel({ ram: 64 * GiB, swap: 0, thp: "never" }, new EventBus());
    // min_free_kbytes = int_sqrt(67108860*16) = 32767; min = 8191; delta = max(2047, 16777) = 16777.
    expect(big.minFreeKbytes).toBe(32767);
    expect(big.wmark).toEqual({ min: 8191, low: 24968, high: 41745 });
  });

  it("clamps min_free_kbytes to [128, 262144] and accepts overrides in bytes", () => {
    const small = new HostKernel({ ram: 1 * MiB, swap: 0, thp: "never" }, new EventBus());
    expect(small.minFreeKbytes).toBe(128);
    const o = new HostKernel(
      { ram: 64 * MiB, swap: 0, thp: "never", watermarks: { min: 1 * MiB, low: 2 * MiB, high: 3 * MiB } },
      new EventBus(),
    );
    expect(o.wmark).toEqual({ min: 256, low: 512, high: 768 });
  });

  it("builds a 64 GiB host quickly and runs on it", () => {
    const t0 = performance.now();
    const k = new HostKernel({ ram: 64 * GiB, swap: 8 * GiB, thp: "always" }, new EventBus());
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 32 * GiB, { noreserve: true });
    for (let i = 0; i < 64; i++) k.userAccess(mm, hva + i * GiB * 0.5, true, i + 1);
    for (let i = 0; i < 64; i++) expect(k.userAccess(mm, hva + i * GiB * 0.5, false)).toBe(i + 1);
    expect(mm.rss).toBe(64 * 512);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe("events", () => {
  it("declares every kind it emits", () => {
    const { k, bus } = boot({ swap: 64 * MiB, ram: 16 * MiB, thp: "always" });
    const seen = new Set<string>();
    bus.listen((e) => seen.add(e.kind));
    const mm: Mm = k.createProcess("qemu");
    mm.registerNotifier(new Recorder());
    const hva = k.mmap(mm, 64 * MiB);
    for (let a = 0; a < 48 * MiB; a += P) k.userAccess(mm, hva + a, a % (8 * P) !== 0, a);
    k.madvise(mm, hva, 4 * MiB, "dontneed");
    k.munmap(mm, hva + 60 * MiB, 4 * MiB);
    k.exit(mm);
    const declared = new Set(Object.keys(HOST_EVENTS));
    for (const s of seen) expect(declared.has(s), s).toBe(true);
    for (const kind of [
      "host.fault",
      "host.zero_page",
      "host.page_alloc",
      "host.rmap_add",
      "host.lru_add",
      "host.kswapd_wake",
      "host.lru_scan",
      "host.rmap_walk",
      "host.notifier.start",
      "host.notifier.end",
      "host.swap_out",
      "host.free",
    ]) {
      expect(seen.has(kind), kind).toBe(true);
    }
  });
});
