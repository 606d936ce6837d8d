// SPDX-License-Identifier: MIT
// Hand-built cases where the wasm core and the JS Mmu must agree on a detail the random streams
// of wasm_mmu.test.ts seldom reach: which TLB entry a walk replaces.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "./addr.js";
import { ACC_USER, ACC_WRITE, Mmu, defaultMmuConfig } from "./mmu.js";
import { hwCounters } from "./mmu_stats.js";
import { PhysMem } from "./phys_mem.js";
import { WasmMmu } from "./wasm_mmu.js";
import { makeX86Pte } from "./x86_pte.js";

/** Frames 1-4: a native 4-level path for gva 0..2 MiB, the last table (frame 4) still empty. */
function fourLevels(): PhysMem {
  const mem = new PhysMem(64 * PAGE_SIZE);
  for (const f of [1, 2, 3, 4]) mem.allocTable(f);
  for (const f of [1, 2, 3]) mem.writeEntry(f, 0, ...makeX86Pte({ pfn: f + 1, writable: true, user: true }));
  return mem;
}

/** One 4-way set of 4 KiB entries (2 MiB ones share it), no paging-structure caches. */
const ONE_SET = defaultMmuConfig("native", { tlb: { "4k": { sets: 1, ways: 4 }, "2m": "shared", "1g": null }, psc: null });

describe("the wasm core and the JS Mmu fill the TLB alike", () => {
  test("a 4 KiB entry that forbids an access sends it to a walk, even where a 2 MiB entry would allow it", () => {
    const results = [Mmu, WasmMmu].map((Impl) => {
      const mem = fourLevels();
      mem.writeEntry(4, 0, ...makeX86Pte({ pfn: 0x40, writable: true, user: true }));
      const t = new Impl(mem, ONE_SET);
      t.loadCr3(1);
      t.access(0, ACC_USER);
      mem.writeEntry(3, 0, ...makeX86Pte({ pfn: 0x200, writable: true, user: true, huge: true, dirty: true }));
      t.access(PAGE_SIZE, ACC_USER | ACC_WRITE);
      const r = t.access(0, ACC_USER | ACC_WRITE);
      return { r, hpa: t.hpa, size: t.pageSize, stats: hwCounters(t.stats) };
    });
    expect(results[1]).toEqual(results[0]);
    expect(results[0]!.stats.walks).toBe(3);
  });

  test("a fill replaces only the entry of its own PCID: a global entry of another PCID stays, and the victim is the LRU way", () => {
    const snaps = [Mmu, WasmMmu].map((Impl) => {
      const mem = fourLevels();
      for (let i = 0; i < 6; i++) mem.writeEntry(4, i, ...makeX86Pte({ pfn: 0x40 + i, writable: true, user: true, global: i === 0 }));
      const t = new Impl(mem, ONE_SET);
      Object.assign(t, { cr4Pge: true, pcide: true });
      t.loadCr3(1, 1);
      t.access(0, ACC_USER); // the global page, clean: its entry does not allow a write
      t.loadCr3(1, 2, true);
      t.access(0, ACC_USER | ACC_WRITE); // hits the global entry, walks to set D, fills for PCID 2 beside it
      for (let i = 1; i < 4; i++) t.access(i * PAGE_SIZE, ACC_USER); // the set is full: the oldest way goes
      const set = t instanceof WasmMmu ? t.cacheSnapshot(t.tlb4k) : t.tlb4k!.snapshot();
      return { keys: Array.from(set.key), pcids: Array.from(set.pcid), stats: hwCounters(t.stats) };
    });
    expect(snaps[1]).toEqual(snaps[0]);
    // Empty ways fill from the last: page 0 of PCID 1 in way 3, of PCID 2 in way 2 (had the fill
    // matched the global entry, it would have replaced way 3), pages 1 and 2 in ways 1 and 0; then
    // way 3, the least recently used, goes for page 3.
    expect(snaps[0]!.keys).toEqual([2, 1, 0, 3]);
    expect(new Set(snaps[0]!.pcids).size).toBe(1); // every entry now PCID 2's
  });
});
