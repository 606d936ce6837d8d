// SPDX-License-Identifier: MIT
// The TDP MMU's tables on their own: install, zap a range, age, zap everything, and the table a
// huge page replaces, with the table pages and leaves counted the way KVM counts them.
import { describe, expect, test } from "vitest";
import { EventBus } from "../hw/events.js";
import { PhysMem } from "../hw/phys_mem.js";
import { ACC_ALL, makeSpte, spteAccessed, spteOut } from "./spte.js";
import { newVmStat } from "./stats.js";
import { TdpMmu, framesAtLevel } from "./tdp_mmu.js";

function setup(ad = true) {
  const mem = new PhysMem(64 * 2 ** 20);
  let next = 1;
  const freed: number[] = [];
  const alloc = { allocMmuPage: () => next++, freeMmuPage: (pfn: number) => void freed.push(pfn) };
  const stats = newVmStat();
  const tdp = new TdpMmu(mem, alloc, "ept", 4, ad, stats, new EventBus());
  /** Maps gfn (the base of a page at `level`) to host frame pfn, accessed. */
  const map = (gfn: number, pfn: number, level = 1) => {
    makeSpte(tdp.masks, pfn, level, ACC_ALL, true, true, true);
    return tdp.map(gfn, spteOut[0], spteOut[1], level);
  };
  const leaves = () => {
    const out: string[] = [];
    tdp.forEachLeaf((gfn, level, pfn) => out.push(`${gfn}:${level}:${pfn}`));
    return out;
  };
  return { tdp, stats, freed, map, leaves };
}

describe("TdpMmu", () => {
  test("a cold 4 KiB map builds three tables under the root; the leaves come back in gfn order", () => {
    const { stats, map, leaves } = setup();
    expect(map(0x12345, 0x800)).toBe("fixed");
    expect(map(0x12345, 0x800)).toBe("spurious");
    expect(map(0x12346, 0x801)).toBe("fixed");
    expect(map(0x40000, 0x900, 2)).toBe("fixed");
    expect(stats.mmu_table_pages).toBe(1 + 3 + 1);
    expect([stats.pages_4k, stats.pages_2m]).toEqual([2, 1]);
    expect(leaves()).toEqual(["74565:1:2048", "74566:1:2049", "262144:2:2304"]);
  });

  test("unmapping a range zaps the leaves that intersect it and keeps the tables", () => {
    const { tdp, stats, map, leaves } = setup();
    for (let i = 0; i < 4; i++) map(0x1000 + i, 0x800 + i);
    map(0x40000, 0x900, 2);
    expect(tdp.unmapGfnRange(0x1001, 0x1003)).toBe(2);
    expect(tdp.unmapGfnRange(0x40100, 0x40101)).toBe(1);
    expect(leaves()).toEqual([`${0x1000}:1:${0x800}`, `${0x1003}:1:${0x803}`]);
    expect(stats.mmu_table_pages).toBe(1 + 3 + 1);
  });

  test("aging reports young once and clears the accessed bit; a test without clear changes nothing", () => {
    const { tdp, map } = setup();
    map(0x1000, 0x800);
    expect(tdp.age(0x1000, 0x1001, false)).toBe(true);
    expect(tdp.age(0x1000, 0x1001, true)).toBe(true);
    expect(tdp.lookup(0x1000) && spteAccessed(tdp.masks, tdp.leafLo)).toBe(false);
    expect(tdp.age(0x1000, 0x1001, true)).toBe(false);
  });

  test("a huge page over a table tears the table down and frees it (handle_removed_pt())", () => {
    const { stats, freed, map, leaves } = setup();
    map(0x200, 0x800);
    map(0x201, 0x801);
    expect(stats.mmu_table_pages).toBe(4);
    expect(map(0x200, 0xa00, 2)).toBe("fixed");
    expect(stats.mmu_table_pages).toBe(3);
    expect(freed).toHaveLength(1);
    expect([stats.pages_4k, stats.pages_2m]).toEqual([0, 1]);
    expect(leaves()).toEqual([`${0x200}:2:${0xa00}`]);
  });

  test("zapping everything frees every table bottom-up, the root last and only if asked", () => {
    const { tdp, stats, freed, map, leaves } = setup();
    map(0, 0x800);
    map(framesAtLevel(4) + 5, 0x801);
    map(framesAtLevel(3) * 7, 0x900, 2);
    const tables = stats.mmu_table_pages;
    expect(tdp.zapAll(false)).toBe(3);
    expect(leaves()).toEqual([]);
    expect(stats.mmu_table_pages).toBe(1);
    expect(freed).toHaveLength(tables - 1);
    expect(freed).not.toContain(tdp.root);
    tdp.zapAll(true);
    expect(freed.at(-1)).toBe(tdp.root);
    expect(stats.mmu_table_pages).toBe(0);
  });
});
