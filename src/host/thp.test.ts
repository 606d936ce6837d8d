// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EventBus } from "../hw/events.js";
import { type HostConfig, HostKernel, type HugetlbPageSize, type MmuNotifier, type MmuNotifierRange } from "./index.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const M2 = 2 * MiB;
const P = 4096;
const HP2: HugetlbPageSize = 2097152;
const HP1: HugetlbPageSize = 1073741824;

function boot(cfg: Partial<HostConfig> = {}) {
  const bus = new EventBus();
  const k = new HostKernel({ ram: 64 * MiB, swap: 0, thp: "always", debugChecks: true, ...cfg }, bus);
  return { k, bus };
}

function ranges(): { log: string[]; n: MmuNotifier } {
  const log: string[] = [];
  const n: MmuNotifier = {
    invalidateRangeStart: (r: MmuNotifierRange) => log.push(`start ${r.start.toString(16)}-${r.end.toString(16)} ${r.event}`),
    invalidateRangeEnd: (r: MmuNotifierRange) => log.push(`end ${r.start.toString(16)}-${r.end.toString(16)} ${r.event}`),
    clearFlushYoung: () => false,
    clearYoung: () => false,
    testYoung: () => false,
    release: () => log.push("release"),
  };
  return { log, n };
}

describe("transparent huge pages", () => {
  it("a write fault maps a 2 MiB THP with one fault; a read maps the huge zero page", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 8 * MiB);
    expect(k.userAccess(mm, hva + 5 * P, true, 11)).toBe(11);
    expect(k.stat.thp_fault_alloc).toBe(1);
    expect(mm.rss).toBe(512);
    expect(k.hostPfnMappingLevel(mm, hva)).toBe(2);
    for (let i = 0; i < 512; i++) k.userAccess(mm, hva + i * P, true, i);
    expect(k.stat.pgfault).toBe(1);
    const g = k.getUserPages(mm, hva + 7 * P, true);
    expect(g.ok && g.level === 2 && g.pfn === k.probe(mm, hva).pfn + 7).toBe(true);
    // Read of the next 2 MiB: the huge zero page.
    expect(k.userAccess(mm, hva + M2 + P, false)).toBe(0);
    expect(k.stat.thp_zero_page_alloc).toBe(1);
    expect(mm.rssZeroPage).toBe(512);
    expect(k.hostPfnMappingLevel(mm, hva + M2)).toBe(2);
    expect(k.vmstat().nr_anon_transparent_hugepages).toBe(1);
    // One deposited PTE table per huge PMD (pgd, pud, pmd tables + 2 deposits).
    expect(mm.pgtablesBytes).toBe(5 * P);
  });

  it("a write to the huge zero page allocates a THP inside a 2 MiB notifier range", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const { log, n } = ranges();
    mm.registerNotifier(n);
    const hva = k.mmap(mm, 4 * MiB);
    k.userAccess(mm, hva, false);
    expect(log).toEqual([]);
    k.userAccess(mm, hva + 3 * P, true, 9);
    const r = `${hva.toString(16)}-${(hva + M2).toString(16)}`;
    expect(log).toEqual([`start ${r} clear`, `end ${r} clear`]);
    expect(mm.rss).toBe(512);
    expect(mm.rssZeroPage).toBe(0);
    expect(k.stat.thp_fault_alloc).toBe(1);
    expect(k.userAccess(mm, hva + 3 * P, false)).toBe(9);
    expect(k.userAccess(mm, hva + 4 * P, false)).toBe(0);
  });

  it("madvise mode: THP only where MADV_HUGEPAGE was given", () => {
    const { k } = boot({ thp: "madvise" });
    const mm = k.createProcess("qemu");
    const a = k.mmap(mm, 4 * MiB);
    const b = k.mmap(mm, 4 * MiB, { thp: "hugepage" });
    k.userAccess(mm, a, true, 1);
    k.userAccess(mm, b, true, 1);
    expect(k.hostPfnMappingLevel(mm, a)).toBe(1);
    expect(k.hostPfnMappingLevel(mm, b)).toBe(2);
    k.madvise(mm, a + M2, M2, "hugepage");
    expect(mm.vmas.length).toBe(3);
    k.userAccess(mm, a + M2, true, 1);
    expect(k.hostPfnMappingLevel(mm, a + M2)).toBe(2);
    k.madvise(mm, b + M2, M2, "nohugepage");
    k.userAccess(mm, b + M2, true, 1);
    expect(k.hostPfnMappingLevel(mm, b + M2)).toBe(1);
  });

  it("falls back to 4 KiB pages when no order-9 block is free above the low watermark", () => {
    const { k } = boot({ ram: 8 * MiB });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 16 * MiB, { noreserve: true });
    let levels = "";
    for (let i = 0; i < 4; i++) {
      k.userAccess(mm, hva + i * M2, true, i + 1);
      levels += k.hostPfnMappingLevel(mm, hva + i * M2);
    }
    expect(k.stat.thp_fault_alloc).toBeGreaterThan(0);
    expect(k.stat.thp_fault_fallback).toBeGreaterThan(0);
    expect(levels).toMatch(/^2+1+$/);
    expect(k.stat.thp_fault_alloc + k.stat.thp_fault_fallback).toBe(4);
    for (let i = 0; i < 4; i++) expect(k.userAccess(mm, hva + i * M2, false)).toBe(i + 1);
  });

  it("a partial munmap or MADV_DONTNEED splits the huge PMD (nested notifier range) and keeps the rest", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const { log, n } = ranges();
    mm.registerNotifier(n);
    const hva = k.mmap(mm, 4 * MiB);
    for (let i = 0; i < 512; i++) k.userAccess(mm, hva + i * P, true, i + 1);
    k.madvise(mm, hva + 10 * P, 2 * P, "dontneed");
    const h = hva.toString(16);
    expect(log).toEqual([
      `start ${(hva + 10 * P).toString(16)}-${(hva + 12 * P).toString(16)} clear`,
      `start ${h}-${(hva + M2).toString(16)} clear`,
      `end ${h}-${(hva + M2).toString(16)} clear`,
      `end ${(hva + 10 * P).toString(16)}-${(hva + 12 * P).toString(16)} clear`,
    ]);
    expect(k.stat.thp_split_pmd).toBe(1);
    expect(mm.rss).toBe(510);
    expect(k.hostPfnMappingLevel(mm, hva)).toBe(1);
    expect(k.userAccess(mm, hva + 10 * P, false)).toBe(0);
    expect(k.userAccess(mm, hva + 12 * P, false)).toBe(13);
    k.munmap(mm, hva, 100 * P);
    expect(mm.rss).toBe(412);
  });

  it("reclaim splits a THP before swapping it out, and every page comes back", () => {
    const { k } = boot({ ram: 32 * MiB, swap: 64 * MiB, debugChecks: false });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 48 * MiB);
    for (let a = 0; a < 48 * MiB; a += P) k.userAccess(mm, hva + a, true, a / P + 1);
    expect(k.stat.thp_fault_alloc).toBeGreaterThan(0);
    expect(k.stat.thp_split_page).toBeGreaterThan(0);
    expect(k.stat.pswpout).toBeGreaterThan(0);
    k.checkInvariants();
    for (let a = 0; a < 48 * MiB; a += P) expect(k.userAccess(mm, hva + a, false)).toBe(a / P + 1);
    k.checkInvariants();
  });
});

describe("hugetlb", () => {
  it("2 MiB pool: reserve at mmap, fault from the pool (reads too), free back on munmap", () => {
    const { k } = boot({ thp: "never" });
    expect(k.reserveHugetlb(HP2, 8)).toBe(8);
    const mm = k.createProcess("qemu");
    const free0 = k.nrFreePages;
    const hva = k.mmap(mm, 8 * MiB, { hugetlb: HP2 });
    let s = k.vmstat();
    expect([s.nr_hugepages_2048kB, s.free_hugepages_2048kB, s.resv_hugepages_2048kB]).toEqual([8, 8, 4]);
    expect(() => k.mmap(mm, 10 * MiB, { hugetlb: HP2 })).toThrow(/ENOMEM/);
    expect(k.userAccess(mm, hva + M2 + 5 * P, false)).toBe(0);
    expect(k.userAccess(mm, hva + 5 * P, true, 3)).toBe(3);
    expect(k.hostPfnMappingLevel(mm, hva)).toBe(2);
    expect(mm.hugetlbPages).toBe(1024);
    expect(mm.rss).toBe(0);
    s = k.vmstat();
    expect([s.free_hugepages_2048kB, s.resv_hugepages_2048kB]).toEqual([6, 2]);
    k.munmap(mm, hva, 8 * MiB);
    s = k.vmstat();
    expect([s.free_hugepages_2048kB, s.resv_hugepages_2048kB]).toEqual([8, 0]);
    expect(k.nrFreePages).toBe(free0);
    expect(k.reserveHugetlb(HP2, 0)).toBe(0);
  });

  it("1 GiB pool: a PUD leaf, host_pfn_mapping_level 3", () => {
    const { k } = boot({ ram: 3 * GiB, thp: "never", debugChecks: false });
    expect(k.reserveHugetlb(HP1, 2)).toBe(2);
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, GiB, { hugetlb: HP1 });
    expect(hva % GiB).toBe(0);
    const g = k.getUserPages(mm, hva + 3 * M2 + P, true);
    expect(g.ok && g.level === 3).toBe(true);
    expect(k.hostPfnMappingLevel(mm, hva)).toBe(3);
    expect(k.vmstat().free_hugepages_1048576kB).toBe(1);
    k.exit(mm);
    expect(k.vmstat().free_hugepages_1048576kB).toBe(2);
    k.checkInvariants();
  });
});
