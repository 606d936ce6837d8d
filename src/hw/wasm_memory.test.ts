// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { PhysMem, WORDS_PER_TABLE } from "./phys_mem.js";
import { CoreMemory } from "./wasm_memory.js";

describe("PhysMem's table storage in wasm memory", () => {
  test("tables written before the pool grows read back after it; the views are re-taken", () => {
    const mem = new PhysMem(1024 * 4096);
    for (let f = 0; f < 300; f++) {
      mem.allocTable(f);
      mem.writeEntry(f, f % 512, f + 1, 0x8000_0000 + f);
    }
    expect(mem.words.buffer).toBe(mem.wasm.memory.buffer);
    expect(mem.tableSlot.buffer).toBe(mem.wasm.memory.buffer);
    for (let f = 0; f < 300; f++) {
      expect(mem.readLo(f, f % 512)).toBe(f + 1);
      expect(mem.readHi(f, f % 512)).toBe(0x8000_0000 + f);
    }
  });

  test("an MMU state allocated after the tables moves the pool up and keeps every word", () => {
    const mem = new PhysMem(256 * 4096);
    for (let f = 0; f < 70; f++) {
      mem.allocTable(f);
      mem.writeEntry(f, 7, f * 3, f);
    }
    const before = mem.wasm.wordsBase;
    const p = mem.wasm.alloc(200_000);
    expect(mem.wasm.wordsBase).toBeGreaterThanOrEqual(p + 200_000);
    expect(before).toBeLessThan(mem.wasm.wordsBase);
    expect(mem.wasm.u8.subarray(p, p + 200_000).every((b) => b === 0)).toBe(true);
    for (let f = 0; f < 70; f++) expect([mem.readLo(f, 7), mem.readHi(f, 7)]).toEqual([f * 3, f]);
    const q = mem.wasm.alloc(8);
    expect(q).toBe(p + 200_000);
  });

  test("content tags live in the same memory and read back after it grows; a listener re-takes its views until removed", () => {
    const mem = new PhysMem(512 * 4096);
    expect(mem.content.buffer).toBe(mem.wasm.memory.buffer);
    for (let f = 0; f < 512; f++) mem.content[f] = 0x8000_0000 + f;
    let calls = 0;
    const remove = mem.wasm.addViewsListener(() => calls++);
    mem.wasm.alloc(3 << 20);
    expect(calls).toBe(1);
    expect(mem.content.buffer).toBe(mem.wasm.memory.buffer);
    expect(mem.contentI32[511]).toBe((0x8000_0000 + 511) | 0);
    for (let f = 0; f < 512; f++) expect(mem.content[f]).toBe(0x8000_0000 + f);
    remove();
    mem.wasm.alloc(3 << 20);
    expect(calls).toBe(1);
  });

  test("an allocation beyond wasm32's 4 GiB is a RangeError that changes nothing", () => {
    const m = new CoreMemory(16, 64 * WORDS_PER_TABLE);
    const base = m.wordsBase;
    const bytes = m.memory.buffer.byteLength;
    expect(() => m.alloc(2 ** 32)).toThrow(/do not fit wasm32's 4 GiB/);
    expect([m.wordsBase, m.memory.buffer.byteLength]).toEqual([base, bytes]);
    expect(m.alloc(8)).toBe(base);
  });

  test("storage beyond wasm32's 4 GiB is refused with the limit in the message", () => {
    const m = new CoreMemory(16, 64 * WORDS_PER_TABLE);
    expect(() => m.growWords(2 ** 30)).toThrow(/does not fit wasm32's 4 GiB: with 16 frames .* at most \d+ tables fit/);
  });
});
