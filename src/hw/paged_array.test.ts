// SPDX-License-Identifier: MIT
import fc from "fast-check";
import { describe, expect, test, vi } from "vitest";
import { PAGE_SIZE } from "./addr.js";
import { CoreLeaves, LEAF_BITS, PAGED_ARRAY_MAX_LIMIT, PagedArray } from "./paged_array.js";
import { PhysMem } from "./phys_mem.js";
import type { CoreMemory } from "./wasm_memory.js";

const LEAF = 2 ** LEAF_BITS;
/** The checker's two index spaces: guest frames (46-bit gpas, sim/scenario_limits.ts), and virtual pages of any gva a number holds. */
const GFN_LIMIT = 2 ** 46 / PAGE_SIZE;
const VPN_LIMIT = PAGED_ARRAY_MAX_LIMIT / PAGE_SIZE;
/** Virtual pages of a 4-level guest's user half and of a 5-level guest's. */
const USER_VPN_LIMITS = [2 ** 47 / PAGE_SIZE, 2 ** 56 / PAGE_SIZE];

describe("PagedArray", () => {
  test("reads 0 where nothing was written, and commits a leaf only on a nonzero write", () => {
    const a = new PagedArray(GFN_LIMIT);
    expect([a.get(0), a.get(12345), a.get(GFN_LIMIT - 1)]).toEqual([0, 0, 0]);
    a.set(77, 0);
    expect(a.leafCount).toBe(0);
    a.set(77, 0xffffffff);
    a.set(78, 5);
    a.set(LEAF - 1, 6);
    expect(a.leafCount).toBe(1);
    expect([a.get(77), a.get(78), a.get(LEAF - 1), a.get(76)]).toEqual([0xffffffff, 5, 6, 0]);
    a.set(LEAF, 7);
    expect(a.leafCount).toBe(2);
    expect(a.bytes).toBeLessThan(3 * LEAF * 4 + 64 * 1024);
  });

  test("getI32/setI32 give the same bits as get/set; a leaf released and reused under another number reads what it holds now", () => {
    const a = new PagedArray(GFN_LIMIT);
    a.setI32(3, -1);
    a.set(4, 0x80000001);
    expect([a.get(3), a.getI32(3), a.get(4), a.getI32(4)]).toEqual([0xffffffff, -1, 0x80000001, -0x7fffffff]);
    // Leaves 0 and 64 share a slot of the 64-leaf cache; leaf 1 is released and its storage goes to leaf 2.
    a.set(64 * LEAF + 9, 11);
    a.set(LEAF + 2, 12);
    a.clearRange(LEAF, 2 * LEAF - 1);
    expect([a.get(3), a.get(64 * LEAF + 9), a.get(LEAF + 2), a.leafCount]).toEqual([0xffffffff, 11, 0, 2]);
    a.set(2 * LEAF + 2, 13);
    expect([a.get(LEAF + 2), a.get(2 * LEAF + 2), a.get(2 * LEAF + 3), a.leafCount]).toEqual([0, 13, 0, 3]);
  });

  test("leaf(n) is the committed leaf that get and set use for leaf number n, or null; beyond the limit a RangeError", () => {
    const a = new PagedArray(GFN_LIMIT);
    expect(a.leaf(5)).toBeNull();
    a.set(5 * LEAF + 7, 42);
    const leaf = a.leaf(5)!;
    expect(leaf[7]).toBe(42);
    leaf[8] = 43;
    expect(a.get(5 * LEAF + 8)).toBe(43);
    // Leaf 69 shares leaf 5's slot of the 64-leaf cache: both still resolve to their own storage.
    a.set(69 * LEAF, 1);
    expect([a.leaf(69)![0], a.leaf(5)![7], a.leaf(6)]).toEqual([1, 42, null]);
    expect(() => a.leaf(GFN_LIMIT / LEAF)).toThrow(RangeError);
  });

  test("indices at the ends of the gfn and gva spaces, and at every power of two, do not alias", () => {
    for (const limit of [GFN_LIMIT, VPN_LIMIT, ...USER_VPN_LIMITS, PAGED_ARRAY_MAX_LIMIT, 2 ** 52 + 1, 1, 5000]) {
      const a = new PagedArray(limit);
      const idx = [0, limit - 1];
      for (let k = 0; 2 ** k < limit; k++) idx.push(2 ** k, 2 ** k - 1);
      const want = new Map<number, number>();
      for (const [n, i] of idx.entries()) {
        a.set(i, n + 1);
        want.set(i, n + 1);
      }
      for (const [i, v] of want) expect([limit, i, a.get(i)]).toEqual([limit, i, v]);
      expect(a.leafCount).toBeLessThanOrEqual(want.size);
    }
  });

  test("an index outside [0, limit) or not whole is a RangeError, not an alias", () => {
    const a = new PagedArray(GFN_LIMIT);
    for (const bad of [GFN_LIMIT, GFN_LIMIT + LEAF, 2 ** 53, -1, -LEAF, 0.5, Number.NaN]) {
      expect(() => a.set(bad, 1)).toThrow(RangeError);
      expect(() => a.get(bad)).toThrow(RangeError);
    }
    a.set(5, 9);
    expect(() => a.get(-1)).toThrow(/a whole number from 0 to 17179869183/);
    for (const bad of [0, -1, 2 ** 53 + 2, 1.5, Number.POSITIVE_INFINITY]) expect(() => new PagedArray(bad)).toThrow(RangeError);
  });

  test("clearRange zeroes part of a leaf, releases whole leaves (reused by the next commit), and skips what was never committed", () => {
    const a = new PagedArray(VPN_LIMIT);
    const far = VPN_LIMIT - 3 * LEAF;
    for (let i = 0; i < 3 * LEAF; i++) a.set(far + i, i + 1);
    a.set(10, 1);
    expect(a.leafCount).toBe(4);
    a.clearRange(far + 5, far + LEAF + LEAF + 1);
    expect([a.get(far + 4), a.get(far + 5), a.get(far + LEAF), a.get(far + 2 * LEAF + 1), a.get(far + 2 * LEAF + 2)]).toEqual([
      5,
      0,
      0,
      0,
      2 * LEAF + 3,
    ]);
    expect(a.leafCount).toBe(3);
    const t = performance.now();
    a.clearRange(0, VPN_LIMIT - 1);
    expect(performance.now() - t).toBeLessThan(1000);
    expect(a.leafCount).toBe(0);
    expect([a.get(10), a.get(far + 4)]).toEqual([0, 0]);
    const bytes = a.bytes;
    a.set(far + 4, 3);
    a.set(2 * LEAF, 4);
    expect([a.get(far + 4), a.get(2 * LEAF), a.get(2 * LEAF + 1), a.leafCount, a.bytes]).toEqual([3, 4, 0, 2, bytes]);
    a.clearRange(-5, 2 ** 60);
    expect(a.leafCount).toBe(0);
  });

  test("forEachNonZero visits the nonzero entries of a range in order", () => {
    const a = new PagedArray(VPN_LIMIT);
    const set = [3, LEAF - 1, LEAF, 5 * LEAF + 7, 2 ** 30, 2 ** 40 + 1];
    for (const i of set) a.set(i, 1);
    a.set(LEAF + 1, 0);
    const seen: number[] = [];
    a.forEachNonZero(3, 2 ** 40 + 1, (i) => seen.push(i));
    expect(seen).toEqual(set);
    seen.length = 0;
    a.forEachNonZero(4, 2 ** 30, (i) => seen.push(i));
    expect(seen).toEqual([LEAF - 1, LEAF, 5 * LEAF + 7, 2 ** 30]);
  });

  test("agrees with a Map under random sets, clears and reads", () => {
    const index = fc.oneof(fc.integer({ min: 0, max: 4 * LEAF }), fc.integer({ min: 0, max: VPN_LIMIT - 1 }));
    const op = fc.oneof(
      fc.tuple(fc.constant("set" as const), index, fc.oneof(fc.constant(0), fc.nat({ max: 0xffffffff }))),
      fc.tuple(fc.constant("clear" as const), index, fc.nat({ max: 3 * LEAF })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const a = new PagedArray(VPN_LIMIT);
        const m = new Map<number, number>();
        for (const [kind, i, v] of ops) {
          if (kind === "set") {
            a.set(i, v);
            m.set(i, v);
          } else {
            a.clearRange(i, i + v);
            for (const k of [...m.keys()]) if (k >= i && k <= i + v) m.delete(k);
          }
        }
        for (const [i, v] of m) if (a.get(i) !== v) return false;
        const nonZero: number[] = [];
        a.forEachNonZero(0, VPN_LIMIT - 1, (i) => nonZero.push(i));
        return (
          nonZero.join() ===
          [...m]
            .filter(([, v]) => v !== 0)
            .map(([i]) => i)
            .sort((x, y) => x - y)
            .join()
        );
      }),
      { numRuns: 100 },
    );
  });
});

describe("PagedArray with its leaves in core memory (CoreLeaves)", () => {
  /** A PhysMem of 64 frames, whose pool holds the leaves. */
  const physMem = () => new PhysMem(64 * 4096);
  /** What the core sees: leaf number n's address in the remembered-leaf table, or 0 (asm/data_check.ts leafAt). */
  const coreLeafAt = (m: CoreMemory, a: PagedArray, n: number) => {
    const c = n % 64;
    return m.f64[a.cacheAt / 8 + c] === n ? m.u32[(a.cacheAt + 64 * 8) / 4 + c]! : 0;
  };

  test("agrees with a Map under random sets, clears and reads while tables come and the pool moves; the core's table points at the leaves JS uses", () => {
    const index = fc.oneof(fc.integer({ min: 0, max: 4 * LEAF }), fc.integer({ min: 0, max: VPN_LIMIT - 1 }));
    const op = fc.oneof(
      fc.tuple(fc.constant("set" as const), index, fc.oneof(fc.constant(0), fc.nat({ max: 0xffffffff }))),
      fc.tuple(fc.constant("clear" as const), index, fc.nat({ max: 3 * LEAF })),
      // An MMU state allocated (the pool, leaves with it, moves up) or a table made.
      fc.tuple(fc.constant("alloc" as const), index, fc.nat({ max: 300_000 })),
      fc.tuple(fc.constant("table" as const), index, fc.nat({ max: 63 })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const mem = physMem();
        const m = mem.wasm;
        const a = new PagedArray(VPN_LIMIT, new CoreLeaves(mem));
        const ref = new Map<number, number>();
        for (const [kind, i, v] of ops) {
          if (kind === "set") {
            a.set(i, v);
            ref.set(i, v);
          } else if (kind === "clear") {
            a.clearRange(i, i + v);
            for (const k of [...ref.keys()]) if (k >= i && k <= i + v) ref.delete(k);
          } else if (kind === "alloc") m.alloc(v);
          else if (!mem.isTable(v)) {
            mem.allocTable(v);
            mem.writeEntry(v, 3, 0xdead, 0xbeef);
          }
        }
        for (const [i, v] of ref) {
          if (a.get(i) !== v) return false;
          // After a get the leaf is remembered: the core reads the same value at its address.
          const at = coreLeafAt(m, a, Math.floor(i / LEAF));
          if (a.leaf(Math.floor(i / LEAF)) !== null && (at === 0 || m.u32[at / 4 + (i % LEAF)] !== v)) return false;
        }
        // The tables kept their words, and count as tables; the leaves do not.
        let tables = 0;
        for (let f = 0; f < 64; f++) if (mem.isTable(f)) tables += mem.readLo(f, 3) === 0xdead ? 1 : 1000;
        return tables === mem.tablePages;
      }),
      { numRuns: 60 },
    );
  });

  test("a leaf that does not fit the core memory is a JS array: same values, and the core is told it has none", () => {
    const mem = physMem();
    const a = new PagedArray(VPN_LIMIT, new CoreLeaves(mem));
    a.set(5, 11);
    vi.spyOn(mem, "allocDataSlots").mockImplementation(() => {
      throw new RangeError("full");
    });
    a.set(3 * LEAF + 1, 22);
    expect([a.get(5), a.get(3 * LEAF + 1), a.leafCount]).toEqual([11, 22, 2]);
    expect(coreLeafAt(mem.wasm, a, 0)).toBeGreaterThan(0);
    expect(a.leaf(3)).not.toBeNull();
    expect(coreLeafAt(mem.wasm, a, 3)).toBe(0);
  });

  test("dispose gives the leaves back: the next array on the same CoreLeaves reuses them, zeroed", () => {
    const mem = physMem();
    const m = mem.wasm;
    const leaves = new CoreLeaves(mem);
    const a = new PagedArray(VPN_LIMIT, leaves);
    a.set(9, 99);
    a.set(LEAF + 9, 98);
    a.get(9);
    const used = [coreLeafAt(m, a, 0), coreLeafAt(m, a, 1)];
    a.dispose();
    a.dispose(); // twice gives nothing back twice
    const b = new PagedArray(VPN_LIMIT, leaves);
    expect(b.cacheAt).toBe(a.cacheAt);
    b.set(2 * LEAF, 1);
    b.set(7 * LEAF, 1);
    b.get(2 * LEAF);
    expect([coreLeafAt(m, b, 2), coreLeafAt(m, b, 7)].sort()).toEqual(used.sort());
    expect([b.get(2 * LEAF + 9), b.get(7 * LEAF + 9)]).toEqual([0, 0]);
    expect(mem.tablePages).toBe(0);
    // The table went back once: a third array has one of its own.
    expect(new PagedArray(VPN_LIMIT, leaves).cacheAt).not.toBe(b.cacheAt);
  });
});
