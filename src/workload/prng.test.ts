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

  it("getState()/setState() carry the whole stream: a copy stepped elsewhere and put back goes on as the original", () => {
    const a = new Prng(7);
    const b = new Prng(7);
    for (let i = 0; i < 5; i++) a.nextU32();
    const s = new Int32Array(4);
    a.getState(s);
    const c = new Prng(99);
    c.setState(s);
    for (let i = 0; i < 5; i++) b.nextU32();
    expect(Array.from({ length: 10 }, () => c.nextU32())).toEqual(Array.from({ length: 10 }, () => b.nextU32()));
  });
});
