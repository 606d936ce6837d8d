// SPDX-License-Identifier: MIT
import { afterEach, describe, expect, test, vi } from "vitest";
import { Prng } from "./prng.js";
import { AccessBatch, OP_WRITE, PhasesStream, PointerChaseStream, RandomStream, SequentialStream, ZipfStream } from "./stream.js";
import { sharedDraws } from "./core_draws.js";

describe("the streams without the core's draws", () => {
  afterEach(() => vi.restoreAllMocks());

  test("where no wasm memory can be had, the streams draw in JS: the same accesses", () => {
    // First use in this file (a fresh module), so the instance is made here, and fails.
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: new () => object } }).WebAssembly;
    vi.spyOn(wasm, "Memory").mockImplementation(() => {
      throw new RangeError("WebAssembly.Memory(): could not allocate memory");
    });
    expect(sharedDraws()).toBeNull();
    const s = new RandomStream(0x10000000, 1 << 22, 500, 0.3, new Prng(3));
    const rng = new Prng(3);
    const b = new AccessBatch(500);
    expect(s.fill(b)).toBe(500);
    for (let i = 0; i < 500; i++) {
      const page = rng.nextInt(1024);
      const addr = 0x10000000 + page * 4096 + (rng.nextU32() & 0xff8);
      expect([b.addrs[i], b.ops[i]]).toEqual([addr, rng.nextFloat() < 0.3 ? OP_WRITE : 0]);
    }
    // phases too: two phases over 16-page windows of a 1024-page region.
    const p = new PhasesStream(0x10000000, 1 << 22, 500, 16 * 4096, 2, 0.3, new Prng(4));
    const pr = new Prng(4);
    let window = pr.nextInt(1024 - 16 + 1);
    expect(p.fill(b)).toBe(500);
    for (let i = 0; i < 500; i++) {
      if (i === 250) window = pr.nextInt(1024 - 16 + 1);
      const addr = 0x10000000 + (window + pr.nextInt(16)) * 4096 + (pr.nextU32() & 0xff8);
      expect([b.addrs[i], b.ops[i]]).toEqual([addr, pr.nextFloat() < 0.3 ? OP_WRITE : 0]);
    }
    // zipf too, with its tables in JS: over 2 pages, rank 0 (page p0 after the shuffle) has 1 / (1 + 2^-1) of the mass.
    const z = new ZipfStream(0x10000000, 2 * 4096, 500, 0.3, 1, new Prng(6));
    const zr = new Prng(6);
    const p0 = 1 - zr.nextInt(2);
    expect(z.fill(b)).toBe(500);
    for (let i = 0; i < 500; i++) {
      const page = zr.nextFloat() <= 2 / 3 ? p0 : 1 - p0;
      const addr = 0x10000000 + page * 4096 + (zr.nextU32() & 0xff8);
      expect([b.addrs[i], b.ops[i]]).toEqual([addr, zr.nextFloat() < 0.3 ? OP_WRITE : 0]);
    }
    // sequential: a stride of 3 pages over 8, wrapping to 0.
    const q = new SequentialStream(0x10000000, 8 * 4096, 500, 0.3, 3 * 4096, new Prng(8));
    const qr = new Prng(8);
    expect(q.fill(b)).toBe(500);
    for (let i = 0, off = 0; i < 500; i++, off = off + 3 * 4096 >= 8 * 4096 ? 0 : off + 3 * 4096)
      expect([b.addrs[i], b.ops[i]]).toEqual([0x10000000 + off, qr.nextFloat() < 0.3 ? OP_WRITE : 0]);
    // pointerChase over 2 nodes: 0, 1, 0, 1, ...
    const c = new PointerChaseStream(0x10000000, 2 * 4096, 500, 4096, 0.3, new Prng(9));
    const cr = new Prng(9);
    cr.nextInt(1);
    expect(c.fill(b)).toBe(500);
    for (let i = 0; i < 500; i++)
      expect([b.addrs[i], b.ops[i]]).toEqual([0x10000000 + (i % 2) * 4096, cr.nextFloat() < 0.3 ? OP_WRITE : 0]);
  });
});
