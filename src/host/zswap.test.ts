// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EventBus } from "../hw/events.js";
import { HostKernel, type HostConfig } from "./index.js";
import { zswapCompressedLength } from "./zswap.js";

const MiB = 1024 * 1024;
const P = 4096;

function boot(cfg: Partial<HostConfig> = {}) {
  return new HostKernel({ ram: 64 * MiB, swap: 256 * MiB, thp: "never", ...cfg }, new EventBus());
}

/** A distinct, non-zero 32-bit value per page. */
function value(i: number): number {
  return Math.imul(i + 1, 2654435761) >>> 0 || 1;
}

describe("zswap (mm/zswap.c)", () => {
  it("compressed lengths: PAGE_SIZE / the Silesia ratio (lz4 2.101, zstd 2.887)", () => {
    expect(zswapCompressedLength("lz4")).toBe(1950);
    expect(zswapCompressedLength("zstd")).toBe(1419);
  });

  it("no pool limit hit: every page reclaimed to swap is a zswpout, none reaches the device; reads are zswap hits", () => {
    const k = boot({ zswap: { maxPoolPercent: 100 } });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 96 * MiB);
    const n = (96 * MiB) / P;
    for (let i = 0; i < n; i++) expect(k.userAccess(mm, hva + i * P, true, value(i))).toBe(value(i));
    const w = k.vmstat();
    const z = k.zswap!.counters();
    const reclaimed = w.pgsteal_kswapd! + w.pgsteal_direct!;
    expect(reclaimed).toBeGreaterThan(8000);
    expect(w.pswpout).toBe(0);
    expect(z.zswpout).toBe(reclaimed);
    expect(z.stored_pages).toBe(mm.swapents);
    expect(z.pool_total_size).toBe(Math.ceil((z.stored_pages! * 1950) / P) * P);
    expect(z.pool_limit_hit).toBe(0);
    k.checkInvariants();
    let wrong = 0;
    for (let i = 0; i < n; i++) if (k.userAccess(mm, hva + i * P, false) !== value(i)) wrong++;
    expect(wrong).toBe(0);
    const r = k.vmstat();
    const z2 = k.zswap!.counters();
    expect(r.pswpin).toBe(0);
    expect(r.pswpout).toBe(0);
    expect(z2.zswpin).toBe(r.pgmajfault);
    expect(z2.zswpin).toBeGreaterThan(8000);
    // Exclusive loads: what is stored is exactly what is still swapped out.
    expect(z2.stored_pages).toBe(mm.swapents);
    expect(z2.zswpout! - z2.zswpin!).toBe(z2.stored_pages);
    k.checkInvariants();
  });

  it("with max_pool_percent 20 the excess goes to the device: pswpout = limit rejects + written_back_pages", () => {
    const k = boot({ zswap: {} });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 128 * MiB);
    const n = (128 * MiB) / P;
    for (let i = 0; i < n; i++) k.userAccess(mm, hva + i * P, true, value(i));
    const w = k.vmstat();
    const z = k.zswap!.counters();
    const reclaimed = w.pgsteal_kswapd! + w.pgsteal_direct!;
    expect(z.pool_limit_hit).toBeGreaterThan(0);
    expect(z.written_back_pages).toBeGreaterThan(0);
    expect(z.zswpwb).toBe(z.written_back_pages);
    expect(z.zswpout! + z.zswap_pool_limit_rejects!).toBe(reclaimed);
    expect(w.pswpout).toBe(z.zswap_pool_limit_rejects! + z.written_back_pages!);
    expect(z.zswpout! - z.written_back_pages!).toBe(z.stored_pages);
    expect(k.zswap!.totalPages).toBeLessThanOrEqual(k.zswap!.maxPages + 1);
    let wrong = 0;
    for (let i = 0; i < n; i++) if (k.userAccess(mm, hva + i * P, false) !== value(i)) wrong++;
    expect(wrong).toBe(0);
    const r = k.vmstat();
    expect(k.zswap!.counters().zswpin! + r.pswpin!).toBe(r.pgmajfault);
    k.checkInvariants();
  });

  it("shrink_worker: second chance, 16 failures per run, then writeback to the accept threshold (exact)", () => {
    const k = boot({ zswap: { maxPoolPercent: 1 } });
    const z = k.zswap!;
    // totalram 16383 pages: max 163 pool pages, accept threshold 146.
    expect([z.maxPages, z.acceptThrPages]).toEqual([163, 146]);
    const pfn = 100;
    const store = (slot: number) => {
      k.mem.content[pfn] = value(slot);
      return z.store(pfn, slot);
    };
    for (let s = 1; s <= 341; s++) expect(store(s)).toBe(true);
    expect(z.totalPages).toBe(163);
    // 341 referenced entries: each rejected store's worker rotates 16 of them and gives up,
    // the 22nd rotates the last 5 and writes back the 35 oldest until 306 entries fit 146 pages.
    for (let s = 342; s <= 363; s++) expect(store(s)).toBe(false);
    const c = z.counters();
    expect([c.pool_limit_hit, c.zswap_pool_limit_rejects, c.written_back_pages, c.stored_pages]).toEqual([22, 22, 35, 306]);
    expect(z.totalPages).toBe(146);
    expect(k.vmstat().pswpout).toBe(35);
    for (let s = 1; s <= 35; s++) expect(k.swap!.data[s]).toBe(value(s));
    expect(store(364)).toBe(true);
  });

  it("zero-filled pages go to the zeromap: swpout_zero, no pool, no I/O, read back as zeros", () => {
    const k = boot({ zswap: {} });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 96 * MiB);
    const n = (96 * MiB) / P;
    for (let i = 0; i < n; i++) k.userAccess(mm, hva + i * P, true, 0);
    const w = k.vmstat();
    const reclaimed = w.pgsteal_kswapd! + w.pgsteal_direct!;
    const z = k.zswap!.counters();
    expect(reclaimed).toBeGreaterThan(8000);
    expect([z.swpout_zero, z.zswpout, z.pool_total_size, w.pswpout]).toEqual([reclaimed, 0, 0, 0]);
    let wrong = 0;
    for (let i = 0; i < n; i++) if (k.userAccess(mm, hva + i * P, false) !== 0) wrong++;
    expect(wrong).toBe(0);
    const r = k.vmstat();
    expect([k.zswap!.counters().swpin_zero, r.pswpin]).toEqual([r.pgmajfault, 0]);
    k.checkInvariants();
  });

  it("enabled: false stores nothing: every reclaimed page is written to the device", () => {
    const k = boot({ zswap: { enabled: false } });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 96 * MiB);
    for (let i = 0; i < (96 * MiB) / P; i++) k.userAccess(mm, hva + i * P, true, value(i));
    const w = k.vmstat();
    expect(w.pswpout).toBe(w.pgsteal_kswapd! + w.pgsteal_direct!);
    expect(k.zswap!.counters().zswpout).toBe(0);
  });
});
