// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, type PageSizeName, type TranslateOptions, coldWalkReads, runTranslate } from "./translate.js";

const LEVEL_DROP: Record<PageSizeName, number> = { "4k": 0, "2m": 1, "1g": 2 };

function run(o: Partial<TranslateOptions>) {
  return runTranslate({ ...DEFAULT_TRANSLATE, ...o });
}

describe("cold walks count every reference (SDM 29.3, Bhargava et al.)", () => {
  test("EPT, 4+4 levels, 4 KiB pages: 25 = 4 guest-table + 20 nested-table + 1 data", () => {
    const r = run({ paging: "ept", levels: 4 });
    expect(r.outcome).toBe("ok");
    expect(r.references).toEqual({ total: 25, guestTable: 4, nestedTable: 20, data: 1 });
    expect(r.references.guestTable + r.references.nestedTable).toBe(coldWalkReads(4, 4));
  });

  test("EPT, 5+5 levels: 36 = 5 + 30 + 1", () => {
    expect(run({ paging: "ept", levels: 5 }).references).toEqual({ total: 36, guestTable: 5, nestedTable: 30, data: 1 });
  });

  test("native, 4 levels: 5 = 4 + 0 + 1; 5 levels: 6", () => {
    expect(run({ paging: "native", levels: 4 }).references).toEqual({ total: 5, guestTable: 4, nestedTable: 0, data: 1 });
    expect(run({ paging: "native", levels: 5 }).references).toEqual({ total: 6, guestTable: 5, nestedTable: 0, data: 1 });
  });

  test("warm: a second access to the same page hits the TLB, one reference", () => {
    for (const paging of ["native", "ept", "npt"] as const) {
      expect(run({ paging, accesses: 2 }).references).toEqual({ total: 1, guestTable: 0, nestedTable: 0, data: 1 });
    }
  });

  // A guest page of 2 MiB (1 GiB) ends the guest walk one (two) levels early: g fewer guest reads,
  // and g fewer nested walks. A host page of 2 MiB (1 GiB) ends every nested walk h levels early.
  // Total = (n-g) + (n-g+1)(m-h) + 1.
  const sizes: PageSizeName[] = ["4k", "2m", "1g"];
  for (const paging of ["ept", "npt"] as const) {
    for (const levels of [4, 5] as const) {
      for (const guestPage of sizes) {
        for (const hostPage of sizes) {
          const g = LEVEL_DROP[guestPage];
          const h = LEVEL_DROP[hostPage];
          const guestReads = levels - g;
          const nestedReads = (guestReads + 1) * (levels - h);
          test(`${paging} ${levels}+${levels} levels, guest ${guestPage}, host ${hostPage}: ${guestReads} + ${nestedReads} + 1`, () => {
            const r = run({ paging, levels, guestPage, hostPage });
            expect(r.outcome).toBe("ok");
            expect(r.references).toEqual({
              total: guestReads + nestedReads + 1,
              guestTable: guestReads,
              nestedTable: nestedReads,
              data: 1,
            });
            // The TLB entry has the smaller of the two page sizes.
            expect(r.pageSize).toBe(
              Math.min({ "4k": 4096, "2m": 2 ** 21, "1g": 2 ** 30 }[guestPage], { "4k": 4096, "2m": 2 ** 21, "1g": 2 ** 30 }[hostPage]),
            );
          });
        }
      }
    }
    for (const levels of [4, 5] as const) {
      for (const guestPage of sizes) {
        test(`native ${levels} levels, ${guestPage} page: ${levels - LEVEL_DROP[guestPage]} + 1`, () => {
          const r = run({ paging: "native", levels, guestPage });
          expect(r.references.guestTable).toBe(levels - LEVEL_DROP[guestPage]);
          expect(r.references.total).toBe(levels - LEVEL_DROP[guestPage] + 1);
        });
      }
    }
  }

  test("the 25 references come in the order the hardware makes them", () => {
    const r = run({ paging: "ept", levels: 4 });
    const seq = r.steps.map((s) =>
      s.kind === "data"
        ? "data"
        : `${s.kind === "guest-table" ? "g" : "n"}${s.level}${s.kind === "nested-table" ? `/${s.translating}` : ""}`,
    );
    const nested = (t: string) => [4, 3, 2, 1].map((l) => `n${l}/${t}`);
    expect(seq).toEqual([
      ...nested("gPML4"),
      "g4",
      ...nested("gPDPT"),
      "g3",
      ...nested("gPD"),
      "g2",
      ...nested("gPT"),
      "g1",
      ...nested("data gpa"),
      "data",
    ]);
  });

  test("with the paging-structure caches on, one cold walk already reuses upper EPT levels", () => {
    // Guest tables sit in one 2 MiB region of guest-physical memory: after the first nested walk
    // (4 reads) the nested PDE cache gives their EPT PT directly (1 read each). The data page is in
    // another GiB: only the nested PML4E is cached (3 reads).
    const r = run({ paging: "ept", caches: true });
    expect(r.references).toEqual({ total: 4 + (4 + 1 + 1 + 1 + 3) + 1, guestTable: 4, nestedTable: 10, data: 1 });
  });

  test("warm with caches: a third access to a neighbouring page skips the guest upper levels", () => {
    const r = run({ paging: "ept", caches: true, accesses: 2, gva: DEFAULT_TRANSLATE.gva });
    expect(r.perAccess[1]).toEqual({ total: 1, guestTable: 0, nestedTable: 0, data: 1 });
  });
});
