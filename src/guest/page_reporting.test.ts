// SPDX-License-Identifier: MIT
// Free page reporting over the guest's buddy allocator (mm/page_reporting.c): what is reported,
// in which batches, when, and what loses the "reported" mark.
import { describe, expect, test } from "vitest";
import { GuestFrameAllocator } from "./frame_alloc.js";
import { PAGE_REPORTING_CAPACITY, PageReporting } from "./page_reporting.js";

const MiB = 1024 * 1024;
const DELAY = 100;

/** An allocator over `mib` MiB with every frame allocated, and a device that records each report. */
function setup(mib: number, maxOrder = 9) {
  const a = new GuestFrameAllocator([[0, mib * MiB]], { maxOrder });
  const frames: number[] = [];
  for (let g = a.allocPages(0); g >= 0; g = a.allocPages(0)) frames.push(g);
  const reports: { gfn: number; order: number }[][] = [];
  const r = new PageReporting(
    a,
    {
      report: (gfns, orders) => {
        reports.push(gfns.map((gfn, i) => ({ gfn, order: orders[i]! })));
        return 0;
      },
    },
    9,
    DELAY,
  );
  return { a, r, reports, frames };
}

/** Frees the 512 frames of the 2 MiB block `i`. */
function free2m(a: GuestFrameAllocator, i: number): void {
  for (let g = i * 512; g < (i + 1) * 512; g++) a.freePages(g, 0);
}

describe("free page reporting", () => {
  test("a freed 2 MiB block is reported once, 2 s after the free; lone 4 KiB frees are not", () => {
    const { a, r, reports } = setup(128);
    r.register(0);
    r.process(DELAY); // the initial flush: nothing is free
    expect(reports).toEqual([]);
    for (let g = 4096; g < 4096 + 511; g++) a.freePages(g, 0); // 511 of block 8: never merges to order 9
    free2m(a, 3);
    r.poll(1000);
    expect(r.scheduled && r.dueAt).toBe(1000 + DELAY);
    r.process(1000 + DELAY);
    // 32 * 512 pages must be free for the zone to report (the watermark check): only 1,023 are.
    expect(reports).toEqual([]);
    for (let i = 10; i < 42; i++) free2m(a, i);
    r.poll(2000);
    r.process(2000 + DELAY);
    const reported = reports.flat();
    expect(reported.every((b) => b.order === 9)).toBe(true);
    expect(reported.map((b) => b.gfn / 512).sort((x, y) => x - y)).toEqual([3, ...Array.from({ length: 32 }, (_, i) => 10 + i)]);
    expect(reports.map((b) => b.length)).toEqual([PAGE_REPORTING_CAPACITY, 1]); // a full batch, then the leftover
    expect(r.stats.pagesReported).toBe(33 * 512);
    // Nothing new: the next run reports nothing again.
    free2m(a, 50);
    r.poll(3000);
    r.process(3000 + DELAY);
    expect(reports.flat().length).toBe(34);
    expect(reports.at(-1)).toEqual([{ gfn: 50 * 512, order: 9 }]);
  });

  test("reported blocks go to the tail: the allocator hands out unreported ones first, and a taken block loses the mark", () => {
    const { a, r } = setup(256);
    for (let i = 0; i < 33; i++) free2m(a, i);
    r.register(0);
    r.process(DELAY);
    expect(r.stats.pagesReported).toBe(33 * 512);
    free2m(a, 100); // unreported, at the head of order 9
    const g = a.allocPages(9);
    expect(g).toBe(100 * 512);
    const next = a.allocPages(9);
    expect(a.isReported(next)).toBe(false); // __del_page_from_free_list() cleared it
    a.freePages(next, 9);
    expect(a.isReported(next)).toBe(false); // freed again: to be reported again
  });

  test("a large list is reported over several runs: about a sixteenth of it (plus one batch) per run", () => {
    const { a, r } = setup(1024); // 512 blocks of 2 MiB
    for (let i = 0; i < 512; i++) free2m(a, i);
    r.register(0);
    let runs = 0;
    for (let now = DELAY; r.scheduled; now += DELAY, runs++) r.process(now);
    // budget = ceil(512 / (32 * 16)) = 1: two full batches per run, 64 blocks: 8 runs.
    expect(runs).toBe(8);
    expect(r.stats.pagesReported).toBe(512 * 512);
    expect(r.stats.reports).toBe(16);
  });
});
