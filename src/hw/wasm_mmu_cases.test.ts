// SPDX-License-Identifier: MIT
// Hand-built cases where the wasm core and the JS Mmu must agree on a detail the random streams
// of wasm_mmu.test.ts seldom reach: which TLB entry a walk replaces, and every low byte of every
// entry a walk reads.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "./addr.js";
import { ACC_USER, ACC_WRITE, Mmu, XLATE_OK, defaultMmuConfig } from "./mmu.js";
import { hwCounters } from "./mmu_stats.js";
import { PhysMem } from "./phys_mem.js";
import { DEFAULT_TRANSLATE, TranslateMachine } from "./scratch_machine.js";
import { REF_DATA, WalkLog } from "./walk_log.js";
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

describe("the wasm core and the JS Mmu read every entry alike", () => {
  // The core takes a common entry (present or RWX, not a large page, no reserved bit) on one mask
  // test and leaves the rest to the full checks; each of the 256 low bytes (P/R, W, U/X, memory
  // type, PS, A, D) of each entry a cold walk reads, with a clean high word, a reserved bit above
  // MAXPHYADDR or NX, must give the JS walker's outcome, fields and counters.
  const FIELDS = ["hpa", "gpa", "pageSize", "errorCode", "exitQual", "faultGva", "faultGpa", "faultLevel", "faultReason"] as const;
  const fieldsOf = (t: Mmu | WasmMmu) => FIELDS.map((f) => t[f]);
  const cases = (["ept", "npt", "native"] as const).flatMap((paging) =>
    ([4, 5] as const).flatMap((levels) => [true, false].map((nxe) => ({ paging, levels, nxe }))),
  );

  test.each(cases)("$paging, $levels levels, EFER.NXE $nxe", ({ paging, levels, nxe }) => {
    const opts = { ...DEFAULT_TRANSLATE, paging, levels, gva: 0x7f12_3456_7000 % 2 ** (12 + 9 * levels) };
    const [mj, mw] = [new TranslateMachine(opts), new TranslateMachine(opts)];
    // The machines' tables, on MMUs with no TLB either, so that every access walks.
    const config = { ...mw.mmu.config, tlb: null };
    const js = new Mmu(mj.mem, config);
    const wasm = new WasmMmu(mw.mem, config);
    for (const t of [js, wasm]) {
      t.efeNxe = nxe;
      if (paging !== "native") t.setNestedContext(1, mw.mmu.nestedRoot);
      t.loadCr3(mw.mmu.cr3Frame);
    }
    const log = new WalkLog();
    js.log = log;
    expect(js.probe(opts.gva, ACC_USER)).toBe(XLATE_OK);
    js.log = null;
    expect(wasm.probe(opts.gva, ACC_USER)).toBe(XLATE_OK);
    const path = log.steps.filter((s) => s.kind !== REF_DATA).map((s) => [Math.floor(s.hpa / PAGE_SIZE), (s.hpa % PAGE_SIZE) / 8]);
    expect(path).toHaveLength(paging === "native" ? levels : levels * (levels + 2));
    const maxPhyAddr = wasm.config.maxPhyAddr;
    for (const [pfn, idx] of path as [number, number][]) {
      const lo0 = mj.mem.readLo(pfn, idx);
      const hi0 = mj.mem.readHi(pfn, idx);
      const his = [hi0, (hi0 | 0x8000_0000) >>> 0];
      if (maxPhyAddr < 52) his.push((hi0 | (1 << (maxPhyAddr - 32))) >>> 0);
      for (const hi of his) {
        for (let low = 0; low < 256; low++) {
          for (const acc of [ACC_USER, ACC_USER | ACC_WRITE]) {
            for (const m of [mj, mw]) m.mem.writeEntry(pfn, idx, ((lo0 & ~0xff) | low) >>> 0, hi);
            const where = `entry at frame ${pfn} index ${idx}, low byte 0x${low.toString(16)}, high word 0x${hi.toString(16)}, access ${acc}`;
            expect(wasm.access(opts.gva, acc), where).toBe(js.access(opts.gva, acc));
            expect(fieldsOf(wasm), where).toEqual(fieldsOf(js));
          }
        }
      }
      for (const m of [mj, mw]) m.mem.writeEntry(pfn, idx, lo0, hi0);
    }
    expect(hwCounters(wasm.stats)).toEqual(hwCounters(js.stats));
    expect(Array.from(mw.mem.words)).toEqual(Array.from(mj.mem.words));
  });
});
