// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { Prng } from "./prng.js";

describe("Prng (xoshiro128**)", () => {
  it("gives the stream every report was made with (values from the unsigned-state implementation)", () => {
    const p = new Prng(1);
    expect(Array.from({ length: 6 }, () => p.nextU32())).toEqual([2442144158, 3238099751, 3819917871, 2104621829, 2021136066, 4223536128]);
    const q = Prng.derive(42, "scheduler");
    let sum = 0;
    for (let i = 0; i < 1e6; i++) sum = (sum + q.nextU32()) % 2 ** 32;
    expect(sum).toBe(660944426);
    expect(q.nextInt(1000)).toBe(28);
  });

  it("nextU32s() gives the values of as many nextU32() calls and leaves the same state", () => {
    const a = new Prng(7);
    const b = new Prng(7);
    const out = new Uint32Array(1000);
    a.nextU32s(out, 999);
    expect(Array.from(out.subarray(0, 999))).toEqual(Array.from({ length: 999 }, () => b.nextU32()));
    expect(out[999]).toBe(0);
    expect(a.nextU32()).toBe(b.nextU32());
  });
});
