// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, runTranslate } from "../sim/translate.js";
import { shadowWalk } from "./shadow_walk.js";

describe("the shadow translate walk", () => {
  test("guest entries at their gpa and real hpa, the data at its hpa (not its gpa), and the leaf spte on that frame", () => {
    const opts = { ...DEFAULT_TRANSLATE, paging: "native" as const, hostPage: "4k" as const, accesses: 1 };
    const { walk, leaf } = shadowWalk(opts);
    const native = runTranslate(opts);
    // The hardware's shadow walk makes as many references as a native one: 4 table reads and the data.
    expect(walk.steps.length).toBe(5);
    expect(walk.steps.map((s) => s.table)).toEqual(["guest PML4E", "guest PDPTE", "guest PDE", "guest PTE", "data"]);
    // The guest's entries are the native walk's (the same guest tables), read at their gpa...
    expect(walk.steps.map((s) => [s.lo, s.hi])).toEqual(native.steps.map((s) => [s.lo, s.hi]));
    expect(walk.steps.map((s) => s.gpa)).toEqual(native.steps.map((s) => s.hpa));
    // ...in host frames elsewhere: no hpa shown is the gpa.
    for (const s of walk.steps) expect(s.hpa).not.toBe(s.gpa);
    expect(walk.steps[4]!.hpa).toBe("0x174567000");
    expect(leaf!.hpa).toBe("0x174567000");
    expect(leaf!.lo).toBe(0x74567007); // hpa bits 31:12 and the guest leaf's P, RW, US
    expect(leaf!.hi).toBe(1);
  });
});
