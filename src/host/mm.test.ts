// SPDX-License-Identifier: MIT
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventBus } from "../hw/events.js";
import { BuddyAllocator, defaultWatermarks, intSqrt } from "./buddy.js";
import { HostKernel, type MmuNotifier, type MmuNotifierRange } from "./index.js";
import { FrameMeta } from "./page_flags.js";
import { swpHi, swpLo, swpOffset, swpType } from "./pgtable.js";

const MiB = 1024 * 1024;
const P = 4096;

function boot() {
  return new HostKernel({ ram: 32 * MiB, swap: 32 * MiB, thp: "never", debugChecks: true }, new EventBus());
}

function recorder(): { log: string[]; n: MmuNotifier } {
  const log: string[] = [];
  const n: MmuNotifier = {
    invalidateRangeStart: (r: MmuNotifierRange) => log.push(`start ${r.start}-${r.end} ${r.event}`),
    invalidateRangeEnd: (r: MmuNotifierRange) => log.push(`end ${r.start}-${r.end} ${r.event}`),
    clearFlushYoung: () => false,
    clearYoung: () => false,
    testYoung: () => false,
    release: () => log.push("release"),
  };
  return { log, n };
}

describe("madvise, munmap, exit", () => {
  it("MADV_DONTNEED frees touched pages inside a notifier range; the next read returns 0", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    const { log, n } = recorder();
    mm.registerNotifier(n);
    const hva = k.mmap(mm, 4 * MiB);
    for (let i = 0; i < 10; i++) k.userAccess(mm, hva + i * P, true, 100 + i);
    const free = k.nrFreePages;
    k.madvise(mm, hva, 10 * P, "dontneed");
    expect(mm.rss).toBe(0);
    expect(k.nrFreePages).toBe(free + 10);
    expect(log).toEqual([`start ${hva}-${hva + 10 * P} clear`, `end ${hva}-${hva + 10 * P} clear`]);
    for (let i = 0; i < 10; i++) expect(k.userAccess(mm, hva + i * P, false)).toBe(0);
    expect(mm.rssZeroPage).toBe(10);
    expect(mm.vmas.length).toBe(1); // DONTNEED does not split VMAs
  });

  it("MADV_DONTNEED on swapped-out pages frees their slots", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 4 * MiB);
    for (let i = 0; i < 16; i++) k.userAccess(mm, hva + i * P, true, i + 1);
    k.madvise(mm, hva, 16 * P, "pageout");
    expect(mm.swapents).toBe(16);
    expect(k.vmstat().nr_swap_pages).toBe(k.swap!.totalSwapPages - 16);
    k.madvise(mm, hva, 16 * P, "dontneed");
    expect(mm.swapents).toBe(0);
    expect(k.vmstat().nr_swap_pages).toBe(k.swap!.totalSwapPages);
  });

  it("MADV_PAGEOUT swaps the range out now, ignoring references; swap-in by write frees the slot", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 4 * MiB);
    for (let i = 0; i < 8; i++) k.userAccess(mm, hva + i * P, true, i + 1);
    k.madvise(mm, hva, 8 * P, "pageout");
    expect(k.stat.pswpout).toBe(8);
    expect(mm.rss).toBe(0);
    expect(k.userAccess(mm, hva, false)).toBe(1); // read swap-in: stays in the swap cache, read-only
    expect(k.lastFaultCycles).toBe(30000); // DEFAULT_SWAP_IN_CYCLES, charged to this access
    expect(k.probe(mm, hva).writable).toBe(false);
    expect(k.vmstat().nr_swapcached).toBe(1);
    expect(k.userAccess(mm, hva, true, 50)).toBe(50); // do_wp_page reuse: the swap copy goes
    expect(k.vmstat().nr_swapcached).toBe(0);
    expect(k.userAccess(mm, hva + P, true, 60)).toBe(60); // write swap-in: slot freed at once
    expect(k.vmstat().nr_swap_pages).toBe(k.swap!.totalSwapPages - 6);
    // A clean swap-cache page is dropped by reclaim without another write.
    expect(k.userAccess(mm, hva + 2 * P, false)).toBe(3);
    k.madvise(mm, hva + 2 * P, P, "pageout");
    expect(k.stat.pswpout).toBe(8);
    expect(k.userAccess(mm, hva + 2 * P, false)).toBe(3);
  });

  it("MADV_COLD deactivates without notifying secondary MMUs", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    const { log, n } = recorder();
    mm.registerNotifier(n);
    const hva = k.mmap(mm, 4 * MiB);
    for (let i = 0; i < 4; i++) for (let g = 0; g < 3; g++) k.getUserPages(mm, hva + i * P, true);
    expect(k.vmstat().nr_active_anon).toBe(4);
    k.madvise(mm, hva, 4 * P, "cold");
    expect(k.vmstat().nr_active_anon).toBe(0);
    expect(k.stat.pgdeactivate).toBe(4);
    expect(k.probe(mm, hva).accessed).toBe(false);
    expect(log).toEqual([]);
  });

  it("munmap frees pages, slots and page tables inside one UNMAP range", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    const { log, n } = recorder();
    mm.registerNotifier(n);
    const free = k.nrFreePages;
    const hva = k.mmap(mm, 8 * MiB);
    for (let a = 0; a < 8 * MiB; a += 2 * P) k.userAccess(mm, hva + a, (a / P) % 4 === 0, 1);
    k.madvise(mm, hva, 64 * P, "pageout");
    k.munmap(mm, hva + 4 * MiB, 4 * MiB);
    expect(log.at(-2)).toBe(`start ${hva + 4 * MiB}-${hva + 8 * MiB} unmap`);
    expect(log.at(-1)).toBe(`end ${hva + 4 * MiB}-${hva + 8 * MiB} unmap`);
    k.munmap(mm, hva, 4 * MiB);
    expect(mm.vmas.length).toBe(0);
    expect(mm.rss + mm.swapents + mm.rssZeroPage).toBe(0);
    expect(mm.pgtablesBytes).toBe(P);
    expect(k.nrFreePages).toBe(free);
    expect(k.vmstat().nr_swap_pages).toBe(k.swap!.totalSwapPages);
    expect(k.vmstat().committed_as).toBe(0);
  });

  it("munmap of the middle of a mapping splits the VMA", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 12 * P);
    for (let i = 0; i < 12; i++) k.userAccess(mm, hva + i * P, true, i + 1);
    k.munmap(mm, hva + 4 * P, 4 * P);
    expect(mm.vmas.map((v) => [v.start - hva, v.end - hva])).toEqual([
      [0, 4 * P],
      [8 * P, 12 * P],
    ]);
    expect(mm.rss).toBe(8);
    expect(k.userAccess(mm, hva + 5 * P, false)).toBeLessThan(0);
    expect(k.userAccess(mm, hva + 9 * P, false)).toBe(10);
  });

  it("exit calls release, then frees everything without further notifier calls", () => {
    const k = boot();
    const free = k.nrFreePages;
    const mm = k.createProcess("qemu");
    const { log, n } = recorder();
    mm.registerNotifier(n);
    const hva = k.mmap(mm, 16 * MiB);
    for (let a = 0; a < 16 * MiB; a += P) k.userAccess(mm, hva + a, true, 1);
    k.madvise(mm, hva, MiB, "pageout");
    log.length = 0;
    k.exit(mm);
    expect(log).toEqual(["release"]);
    expect(mm.dead).toBe(true);
    expect(k.nrFreePages).toBe(free);
    expect(k.vmstat().nr_swap_pages).toBe(k.swap!.totalSwapPages);
    expect(k.processes()).toEqual([]);
    expect(() => mm.registerNotifier(n)).toThrow();
  });

  it("a PTE change outside an invalidation is refused while a notifier is registered", () => {
    const k = boot();
    const mm = k.createProcess("qemu");
    mm.registerNotifier(recorder().n);
    const hva = k.mmap(mm, MiB);
    k.userAccess(mm, hva, true, 1);
    k.walk(mm, hva);
    expect(() => k.setEntry(mm, k.wTable, k.wIdx, 1, hva, 0, 0)).toThrow(/outside mmu_notifier_invalidate_range_start/);
    expect(() => k.setEntry(mm, k.wTable, k.wIdx, 1, hva, (k.wLo + 0x1000) >>> 0, k.wHi)).toThrow(/without being cleared/);
  });
});

describe("building blocks", () => {
  it("int_sqrt is exact", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 52 }), (x) => {
        const r = intSqrt(x);
        return r * r <= x && (r + 1) * (r + 1) > x;
      }),
    );
  });

  it("the buddy allocator splits and merges back to max-order blocks", () => {
    const n = 4096 + 100;
    const meta = new FrameMeta(n);
    const b = new BuddyAllocator(meta, n);
    expect(b.nrFree).toBe(n - 1); // frame 0 is reserved
    expect(b.alloc(0)).toBe(1);
    b.free(1, 0);
    const got: [number, number][] = [];
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 40 }), (orders) => {
        for (const o of orders) {
          const p = b.alloc(o);
          if (p >= 0) {
            expect(p % (1 << o)).toBe(0);
            got.push([p, o]);
          }
        }
        while (got.length) {
          const [p, o] = got.pop()!;
          b.free(p, o);
        }
        return b.nrFree === n - 1;
      }),
    );
    // Everything merged back: 1..1023 around the reserved frame 0 (one block per order 0..9),
    // max-order blocks, and the 100-frame tail (64 + 32 + 4).
    expect([...b.nrFreeArea].slice(0, 10)).toEqual([1, 1, 2, 1, 1, 2, 2, 1, 1, 1]);
    expect(b.nrFreeArea[10]! + (b.pristineEnd - b.pristine) / 1024).toBe(3);
  });

  it("watermarks follow the kernel formula at several sizes", () => {
    expect(defaultWatermarks(16383)).toMatchObject({ min: 255, low: 318, high: 381 });
    // 1 GiB: min_free_kbytes = int_sqrt(1048572*16) = 4095; min 1023; delta = max(255, 262) = 262.
    expect(defaultWatermarks(262143)).toMatchObject({ minFreeKbytes: 4095, min: 1023, low: 1285, high: 1547 });
    // 1 TiB: int_sqrt(2^30 * 16) = 131072 kB; from 4 TiB on the clamp at 262144 kB holds.
    expect(defaultWatermarks(2 ** 28).minFreeKbytes).toBe(131072);
    expect(defaultWatermarks(2 ** 31).minFreeKbytes).toBe(262144);
  });

  it("swap PTEs round-trip every offset and never look present or none", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.boolean(), (off, excl) => {
        const lo = swpLo(off, excl);
        const hi = swpHi(off);
        return swpOffset(lo, hi) === off && (lo & 1) === 0 && (lo !== 0 || hi !== 0) && swpType(hi) === 0 && ((lo & 8) !== 0) === excl;
      }),
    );
  });
});
