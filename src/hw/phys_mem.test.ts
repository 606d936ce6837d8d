// SPDX-License-Identifier: MIT
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { LEVEL_SIZE, fromCanonical, tableIndex, toCanonical } from "./addr.js";
import {
  EPT_A,
  EPT_D,
  EPT_IPAT,
  EPT_MT_MASK,
  EPT_PS,
  EPT_R,
  EPT_W,
  EPT_X,
  EPT_XU,
  SPTE_MMU_PRESENT,
  decodeEptPte,
  makeEptPte,
} from "./ept_pte.js";
import { PhysMem } from "./phys_mem.js";
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW, PTE_US, decodeX86Pte, entryPfn, makeX86Pte } from "./x86_pte.js";

describe("entry formats", () => {
  test("x86 lo-word flag masks do not overlap (stands in for KVM's static_asserts)", () => {
    const masks = [PTE_P, PTE_RW, PTE_US, PTE_PWT, PTE_PCD, PTE_A, PTE_D, PTE_PS, PTE_G];
    expect(masks.reduce((a, m) => a + m, 0)).toBe(masks.reduce((a, m) => a | m, 0));
    expect(masks.every((m) => m < 1 << 12)).toBe(true);
  });

  test("EPT lo-word masks do not overlap and stay below the frame bits", () => {
    const masks = [EPT_R, EPT_W, EPT_X, EPT_MT_MASK, EPT_IPAT, EPT_PS, EPT_A, EPT_D, EPT_XU, SPTE_MMU_PRESENT];
    expect(masks.reduce((a, m) => a + m, 0)).toBe(masks.reduce((a, m) => a | m, 0));
    expect(masks.every((m) => m < 1 << 12)).toBe(true);
  });

  test("the (lo, hi) frame number agrees with BigInt for every 40-bit pfn, with and without NX", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }), fc.boolean(), (pfn, nx) => {
        const entry = (pfn << 12n) | 0x67n | (nx ? 1n << 63n : 0n);
        const lo = Number(entry & 0xffffffffn);
        const hi = Number(entry >> 32n);
        expect(entryPfn(lo, hi)).toBe(Number(pfn));
        const [elo, ehi] = makeX86Pte({ pfn: Number(pfn), writable: true, user: true, accessed: true, dirty: true, nx });
        expect((BigInt(ehi) << 32n) | BigInt(elo)).toBe(entry);
        expect(decodeX86Pte(elo, ehi, 1).nx).toBe(nx);
      }),
      { numRuns: 200 },
    );
  });

  test("table indices agree with BigInt shifts for every 57-bit address", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 57n) - 1n }), (a) => {
        const page = a & ~0xfffn; // exact as a double
        for (let level = 1; level <= 5; level++) {
          expect(tableIndex(Number(page), level)).toBe(Number((page >> BigInt(12 + 9 * (level - 1))) & 511n));
        }
      }),
      { numRuns: 200 },
    );
    expect(LEVEL_SIZE[4]).toBe(2 ** 39);
  });

  test("EPT entries round-trip through encode and decode", () => {
    const [lo, hi] = makeEptPte({
      pfn: 0x12345678,
      r: true,
      w: false,
      x: true,
      memType: 6,
      ipat: true,
      huge: true,
      accessed: true,
      sve: true,
    });
    expect(decodeEptPte(lo, hi, 2)).toEqual({
      r: true,
      w: false,
      x: true,
      memType: 6,
      ipat: true,
      huge: true,
      accessed: true,
      dirty: false,
      xu: false,
      sve: true,
      pfn: 0x12345678,
    });
  });

  test("canonical addresses: sign-extension checked and stripped, 4- and 5-level", () => {
    expect(fromCanonical(0xffff888000001000n, 4)).toBe(0x888000001000);
    expect(toCanonical(0x888000001000, 4)).toBe(0xffff888000001000n);
    expect(fromCanonical(0x0000800000000000n, 4)).toBeNull();
    expect(fromCanonical(0x0000800000000000n, 5)).toBe(0x800000000000);
    expect(fromCanonical(0xff00000000000000n, 5)).toBe(2 ** 56);
  });
});

describe("PhysMem", () => {
  test("table storage: allocate, write, free, reuse zeroed", () => {
    const m = new PhysMem(16 * 4096);
    m.allocTable(3);
    m.writeEntry(3, 7, 0xdead0001, 5);
    expect(m.readLo(3, 7)).toBe(0xdead0001);
    expect(m.tablePages).toBe(1);
    m.freeTable(3);
    m.allocTable(4);
    expect(m.readLo(4, 7)).toBe(0);
    expect(m.tablePages).toBe(1);
  });

  test("a slot freed by restore() comes back zeroed", () => {
    const m = new PhysMem(16 * 4096);
    const s = m.snapshot();
    m.allocTable(2);
    m.writeEntry(2, 0, 1, 0);
    m.restore(s);
    m.allocTable(5);
    expect(m.readLo(5, 0)).toBe(0);
  });

  test("copyTable/loadTable keep a table's words across a move (swap of a page-table page)", () => {
    const m = new PhysMem(16 * 4096);
    m.allocTable(1);
    m.writeEntry(1, 511, 0x1234, 0x80000000);
    const saved = m.copyTable(1);
    m.zeroFrame(1);
    expect(m.isTable(1)).toBe(false);
    m.loadTable(9, saved);
    expect([m.readLo(9, 511), m.readHi(9, 511)]).toEqual([0x1234, 0x80000000]);
  });

  test("64 GiB of simulated RAM costs 8 bytes a frame", () => {
    const m = new PhysMem(64 * 2 ** 30);
    expect(m.nframes).toBe(16 * 2 ** 20);
    expect(m.content.byteLength + m.tableSlot.byteLength).toBe(8 * m.nframes);
  });

  test("bad sizes are refused", () => {
    expect(() => new PhysMem(4095)).toThrow(/multiple of 4 KiB/);
    expect(() => new PhysMem(2 ** 41)).toThrow(/above 1 TiB/);
  });
});
