// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, runTranslate } from "../sim/translate.js";
import { shadowWalk } from "./shadow_walk.js";
import { sideBySide } from "./side_by_side.js";

describe("side by side: EPT and shadow paging for the same access", () => {
  test("a cold 4+4 walk: 25 references under EPT, 5 on a shadow hit, 4 guest entries read by KVM on a miss", () => {
    const opts = { ...DEFAULT_TRANSLATE, accesses: 1 };
    const ept = runTranslate({ ...opts, paging: "ept" });
    const { walk, leaf } = shadowWalk({ ...opts, paging: "native" });
    const s = sideBySide(ept, walk, leaf);
    expect([s.ept.refs.length, s.ept.nested, s.ept.guest, s.ept.data]).toEqual([25, 20, 4, 1]);
    expect(s.ept.refs.map((r) => r.label).slice(0, 5)).toEqual([
      "EPT PML4E (for gPML4)",
      "EPT PDPTE (for gPML4)",
      "EPT PDE (for gPML4)",
      "EPT PTE (for gPML4)",
      "guest PML4E",
    ]);
    expect(s.hit.map((r) => r.label)).toEqual(["shadow PML4E", "shadow PDPTE", "shadow PDE", "shadow PTE", "data"]);
    // The same guest data frame on both sides, and the spte maps it.
    expect(s.hit[4]!.value).toBe(`hpa ${ept.hpa}`);
    expect(s.ept.refs[24]!.value).toBe(`hpa ${ept.hpa}`);
    expect(s.hit[3]!.value).toBe(leaf!.entry);
    expect(s.missReads.map((r) => r.label.split(" at ")[0])).toEqual(["guest PML4E", "guest PDPTE", "guest PDE", "guest PTE"]);
    expect(s.summary).toContain("EPT makes 25 references");
    expect(s.summary).toContain("shadow paging makes 5");
  });

  test("5-level paging: 35 + 1 under EPT, 5 + 1 on a shadow hit", () => {
    const opts = { ...DEFAULT_TRANSLATE, levels: 5 as const, accesses: 1 };
    const ept = runTranslate({ ...opts, paging: "ept" });
    const { walk, leaf } = shadowWalk({ ...opts, paging: "native" });
    const s = sideBySide(ept, walk, leaf);
    expect([s.ept.refs.length, s.hit.length, s.missReads.length]).toEqual([36, 6, 5]);
  });
});
