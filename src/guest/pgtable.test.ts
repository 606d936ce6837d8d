// SPDX-License-Identifier: MIT
// Random mmap / touch / munmap sequences against the invariants the page-table code must keep.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import { PhysMem } from "../hw/phys_mem.js";
import { TableIter, levelFrames, physTables } from "../hw/table_iter.js";
import { PTE_P } from "../hw/x86_pte.js";
import { GuestKernel } from "./kernel.js";
import { NativeCpu } from "../hw/native_cpu.js";

const MiB = 1024 * 1024;

/** Table frames reachable from `root` (the root included), read straight from PhysMem. */
function reachableTables(mem: PhysMem, root: number, levels: number): number {
  let n = 1;
  const it = new TableIter(physTables(mem), (lo) => (lo & PTE_P) !== 0);
  for (it.start(root, levels, 0, levelFrames(levels + 1)); it.valid; it.next()) if (it.present && !it.leaf) n++;
  return n;
}

const op = fc.oneof(
  fc.record({ kind: fc.constant("mmap" as const), pages: fc.integer({ min: 1, max: 1500 }), huge: fc.boolean() }),
  fc.record({
    kind: fc.constant("touch" as const),
    vma: fc.nat(),
    page: fc.nat(),
    count: fc.integer({ min: 1, max: 40 }),
    write: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("munmap" as const), vma: fc.nat(), from: fc.nat(), pages: fc.integer({ min: 1, max: 1200 }) }),
);

describe("page tables under random mmap/munmap", () => {
  for (const levels of [4, 5] as const) {
    test(`${levels}-level: tables are all reachable, the walker agrees with the VMAs, exit frees everything`, () => {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
          const mem = new PhysMem(256 * MiB);
          const port = new NativeCpu(mem, { levels });
          const k = new GuestKernel({ ram: [[0, 256 * MiB]], cpus: [port], levels });
          const free0 = k.alloc.nrFree;
          const p = k.createProcess("p");
          k.contextSwitch(p);
          const live = new Set<number>();
          const dead = new Set<number>();
          for (const o of ops) {
            if (o.kind === "mmap") {
              if (p.vmas.length < 12) p.mmap(`v${p.vmas.length}`, o.pages * PAGE_SIZE, o.huge ? { hugePage: "2m" } : {});
              continue;
            }
            if (p.vmas.length === 0) continue;
            const v = p.vmas[o.vma % p.vmas.length]!;
            const span = (v.end - v.start) / PAGE_SIZE;
            if (o.kind === "touch") {
              for (let i = 0; i < o.count; i++) {
                const g = v.start + ((o.page + i * 37) % span) * PAGE_SIZE;
                const acc = ACC_USER | (o.write ? ACC_WRITE : 0);
                for (let t = 0; t < 3 && port.mmu.access(g, acc) === XLATE_GUEST_PF; t++) {
                  expect(k.handlePageFault(p, g, port.mmu.errorCode)).toBe("fixed");
                }
                const unit = v.pageLevel === 1 ? PAGE_SIZE : 512 * PAGE_SIZE; // what one fault maps
                const key = Math.floor(g / unit) * unit;
                live.add(key);
                dead.delete(key);
              }
            } else {
              const unit = v.pageLevel === 1 ? 1 : 512;
              const from = Math.floor((o.from % span) / unit) * unit;
              const len = Math.min(span - from, Math.ceil(o.pages / unit) * unit);
              const start = v.start + from * PAGE_SIZE;
              p.munmap(start, len * PAGE_SIZE);
              for (const g of live) {
                if (g >= start && g < start + len * PAGE_SIZE) {
                  live.delete(g);
                  dead.add(g);
                }
              }
            }
            expect(reachableTables(mem, p.pgd, levels)).toBe(p.VmPTE);
          }
          for (const g of live) expect(port.mmu.probe(g, ACC_USER)).toBe(XLATE_OK);
          for (const g of dead) {
            expect(port.mmu.probe(g, ACC_USER)).toBe(XLATE_GUEST_PF);
            expect(port.mmu.access(g, ACC_USER)).toBe(XLATE_GUEST_PF); // no stale TLB entry
          }
          p.exit();
          expect(k.alloc.nrFree).toBe(free0);
          expect(k.stats.nr_page_table_pages).toBe(0);
        }),
        { seed: 20240601, numRuns: 150 },
      );
    });
  }
});
