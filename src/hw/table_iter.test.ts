// SPDX-License-Identifier: MIT
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { PhysMem } from "./phys_mem.js";
import { TableIter, levelFrames, physTables } from "./table_iter.js";
import { PTE_P, entryPfn, makeX86Pte } from "./x86_pte.js";

const present = (lo: number) => (lo & PTE_P) !== 0;

/** A 4-level tree at frame 1 mapping each page of `pages` (4 KiB leaves, or a 2 MiB leaf when `huge`). */
function tree(pages: number[], huge: boolean) {
  const mem = new PhysMem(64 * 2 ** 20);
  let next = 2;
  mem.allocTable(1);
  for (const page of pages) {
    let table = 1;
    const leafLevel = huge ? 2 : 1;
    for (let level = 4; level > leafLevel; level--) {
      const idx = Math.floor(page / levelFrames(level)) % 512;
      if (!present(mem.readLo(table, idx))) {
        mem.allocTable(next);
        mem.writeEntry(table, idx, ...makeX86Pte({ pfn: next++, writable: true }));
      }
      table = mem.readLo(table, idx) >>> 12;
    }
    mem.writeEntry(table, Math.floor(page / levelFrames(leafLevel)) % 512, ...makeX86Pte({ pfn: 7, huge }));
  }
  return mem;
}

/** The reference: present entries of [start, end) in pre-order (or post-order), by recursion. */
function descend(mem: PhysMem, table: number, level: number, base: number, start: number, end: number, out: string[], post = false): void {
  for (let i = 0; i < 512; i++) {
    const b = base + i * levelFrames(level);
    if (b + levelFrames(level) <= start || b >= end) continue;
    const lo = mem.readLo(table, i);
    if (!present(lo)) continue;
    if (!post) out.push(`${level}:${i}:${b}`);
    if (level > 1 && (lo & 0x80) === 0) descend(mem, lo >>> 12, level - 1, b, start, end, out, post);
    if (post) out.push(`${level}:${i}:${b}`);
  }
}

describe("TableIter", () => {
  test("visits the present entries of a range in pre-order, as a recursive descent does", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 22 }), { maxLength: 40 }),
        fc.boolean(),
        fc.nat(2 ** 22),
        fc.nat(2 ** 22),
        (pages, huge, a, b) => {
          const mem = tree(pages, huge);
          const [start, end] = a <= b ? [a, b + 1] : [b, a + 1];
          const want: string[] = [];
          descend(mem, 1, 4, 0, start, end, want);
          const got: string[] = [];
          const it = new TableIter(physTables(mem), present);
          for (it.start(1, 4, start, end); it.valid; it.next()) {
            if (it.present) got.push(`${it.level}:${it.index}:${it.base}`);
          }
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("in post-order a table's entries come before the entry that points at it, as a recursive descent returns", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 22 }), { maxLength: 40 }),
        fc.boolean(),
        fc.nat(2 ** 22),
        fc.nat(2 ** 22),
        (pages, huge, a, b) => {
          const mem = tree(pages, huge);
          const [start, end] = a <= b ? [a, b + 1] : [b, a + 1];
          const want: string[] = [];
          descend(mem, 1, 4, 0, start, end, want, true);
          const got: string[] = [];
          const it = new TableIter(physTables(mem), present);
          for (it.start(1, 4, start, end, 1, true); it.valid; it.next()) {
            if (it.present) got.push(`${it.level}:${it.index}:${it.base}`);
          }
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("a post-order zap may free each child table when it reaches the entry above it: only the root is left", () => {
    const pages = [0, 1, 600, 2 ** 18 + 3, 2 ** 27 + 5];
    const mem = tree(pages, false);
    const it = new TableIter(physTables(mem), present);
    const freed: number[] = [];
    for (it.start(1, 4, 0, 2 ** 36, 1, true); it.valid; it.next()) {
      if (!it.present) continue;
      const child = it.leaf ? -1 : entryPfn(it.lo, it.hi);
      mem.writeEntry(it.table, it.index, 0, 0);
      if (child >= 0) {
        mem.freeTable(child);
        freed.push(child);
      }
    }
    expect(freed).toHaveLength(3 + 2 + 2 + 1 + 1);
    for (let f = 2; f < 16; f++) expect(mem.isTable(f)).toBe(false);
    for (let i = 0; i < 512; i++) expect(mem.readLo(1, i)).toBe(0);
  });

  test("one page's path: an entry per level down to the leaf, with the index path; skip() stays out of a subtree", () => {
    const page = 0x12345;
    const mem = tree([page, page + 1], false);
    const it = new TableIter(physTables(mem), present);
    const levels: number[] = [];
    for (it.start(1, 4, page, page + 1); it.valid; it.next()) levels.push(it.level);
    expect(levels).toEqual([4, 3, 2, 1]);
    it.start(1, 4, page, page + 1);
    while (it.level > 1) it.next();
    expect([...it.path.subarray(1, 5)]).toEqual([page % 512, (page >> 9) % 512, (page >> 18) % 512, 0]);
    let n = 0;
    for (it.start(1, 4, 0, 2 ** 27); it.valid; it.next()) {
      if (it.present) n++;
      if (it.level === 2) it.skip();
    }
    expect(n).toBe(3);
  });

  test("a table that cannot be read is not entered and is named", () => {
    const mem = tree([5], false);
    const it = new TableIter(physTables(mem), present);
    mem.freeTable(mem.readLo(1, 0) >>> 12);
    const seen: number[] = [];
    for (it.start(1, 4, 5, 6); it.valid; it.next()) seen.push(it.level);
    expect(seen).toEqual([4]);
    expect(it.unreadableLevel).toBe(3);
  });
});
