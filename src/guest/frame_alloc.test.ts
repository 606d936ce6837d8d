// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { PAGE_1G, PAGE_SIZE } from "../hw/addr.js";
import { GuestFrameAllocator, ORDER_1G, ORDER_2M } from "./frame_alloc.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("GuestFrameAllocator", () => {
  test("hands out order-0 frames lowest address first and counts free/used", () => {
    const a = new GuestFrameAllocator([[0, 8 * MiB]]);
    expect(a.totalPages).toBe(2048);
    expect(a.nrFree).toBe(2048);
    expect([a.allocPages(0), a.allocPages(0), a.allocPages(0)]).toEqual([0, 1, 2]);
    expect(a.nrUsed).toBe(3);
    expect(a.nrFree).toBe(2045);
  });

  test("reserved ranges and partial pages are never handed out", () => {
    const a = new GuestFrameAllocator([[0x800, 4 * MiB + 0x10]], { reserved: [[0, MiB]] });
    expect(a.totalPages).toBe(768); // [1 MiB, 4 MiB)
    expect(a.allocPages(0)).toBe(256);
    expect(a.isManaged(0)).toBe(false);
    expect(a.isManaged(256)).toBe(true);
    expect(a.isManaged(1024)).toBe(false);
  });

  test("never hands out a frame in the hole below 4 GiB", () => {
    const ranges = [
      [0, 3 * GiB],
      [4 * GiB, 4 * GiB + 512 * MiB],
    ] as const;
    const a = new GuestFrameAllocator(ranges);
    const holeStart = (3 * GiB) / PAGE_SIZE;
    const holeEnd = (4 * GiB) / PAGE_SIZE;
    expect(a.totalPages).toBe((3.5 * GiB) / PAGE_SIZE);
    let n = 0;
    // Mixed orders until exhausted: 1 GiB, 2 MiB, then 4 KiB blocks.
    for (const order of [ORDER_1G, ORDER_2M, 0]) {
      for (;;) {
        const gfn = a.allocPages(order);
        if (gfn < 0) break;
        expect(gfn % 2 ** order).toBe(0);
        expect(gfn + 2 ** order <= holeStart || gfn >= holeEnd).toBe(true);
        n += 2 ** order;
      }
    }
    expect(n).toBe(a.totalPages);
    expect(a.nrFree).toBe(0);
    expect(a.allocPages(0)).toBe(-1);
  });

  test("2 MiB and 1 GiB blocks are aligned, and freeing merges the buddies back", () => {
    const a = new GuestFrameAllocator([[0, 2 * PAGE_1G]]);
    const small = a.allocPages(0);
    const huge2m = a.allocPages(ORDER_2M);
    const huge1g = a.allocPages(ORDER_1G);
    expect(small).toBe(0);
    expect(huge2m).toBe(512); // the first free 2 MiB block after frame 0's
    expect(huge1g).toBe(PAGE_1G / PAGE_SIZE); // the second 1 GiB block, the first is split
    expect(a.allocatedOrder(huge2m)).toBe(ORDER_2M);
    a.freePages(huge1g, ORDER_1G);
    a.freePages(huge2m, ORDER_2M);
    a.freePages(small, 0);
    expect(a.nrFree).toBe(a.totalPages);
    expect(a.nrFreeArea[ORDER_1G]).toBe(2);
    for (let o = 0; o < ORDER_1G; o++) expect(a.nrFreeArea[o]).toBe(0);
  });

  test("a freed frame is the next one handed out (head of its list) unless it can merge", () => {
    const a = new GuestFrameAllocator([[0, 4 * MiB]]);
    const f = [a.allocPages(0), a.allocPages(0), a.allocPages(0), a.allocPages(0)];
    a.freePages(f[2]!, 0);
    expect(a.allocPages(0)).toBe(f[2]);
  });

  test("double free and wrong order are refused", () => {
    const a = new GuestFrameAllocator([[0, 4 * MiB]]);
    const g = a.allocPages(1);
    expect(() => a.freePages(g, 0)).toThrow();
    a.freePages(g, 1);
    expect(() => a.freePages(g, 1)).toThrow();
  });

  test("the same calls give the same frames (determinism), and snapshot/restore rewinds", () => {
    const run = (a: GuestFrameAllocator) => {
      const out: number[] = [];
      for (let i = 0; i < 50; i++) out.push(a.allocPages(i % 3 === 0 ? 2 : 0));
      for (let i = 0; i < 50; i += 7) a.freePages(out[i]!, i % 3 === 0 ? 2 : 0);
      for (let i = 0; i < 20; i++) out.push(a.allocPages(0));
      return out;
    };
    const a = new GuestFrameAllocator([[0, 16 * MiB]]);
    const snap = a.snapshot();
    const first = run(a);
    expect(run(new GuestFrameAllocator([[0, 16 * MiB]]))).toEqual(first);
    a.restore(snap);
    expect(a.nrFree).toBe(a.totalPages);
    expect(run(a)).toEqual(first);
  });
});
