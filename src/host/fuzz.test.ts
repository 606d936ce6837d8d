// SPDX-License-Identifier: MIT
// Random operations on a small host against an oracle of what each page must read back.
import { describe, expect, it } from "vitest";
import { EventBus } from "../hw/events.js";
import { HostKernel, type MmuNotifier, type ThpMode } from "./index.js";
import type { Mm } from "./mm_types.js";

const MiB = 1024 * 1024;
const P = 4096;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A notifier that checks every PTE removal is bracketed and says "young" at random. */
function checkingNotifier(rnd: () => number): MmuNotifier & { depth: number } {
  const n = {
    depth: 0,
    invalidateRangeStart: () => {
      n.depth++;
    },
    invalidateRangeEnd: () => {
      n.depth--;
    },
    clearFlushYoung: () => rnd() < 0.2,
    clearYoung: () => false,
    testYoung: () => false,
    release: () => {},
  };
  return n;
}

function run(seed: number, thp: ThpMode, pageCluster: number, steps: number, swap = 24 * MiB, kswapd: "sync" | "agent" = "sync"): boolean {
  const rnd = mulberry32(seed);
  const k = new HostKernel({ ram: 6 * MiB, swap, thp, pageCluster, kswapd, debugChecks: false }, new EventBus());
  const mm: Mm = k.createProcess("qemu");
  const notifier = checkingNotifier(rnd);
  mm.registerNotifier(notifier);
  const SIZE = 24 * MiB;
  const base = k.mmap(mm, SIZE, { noreserve: true });
  const npages = SIZE / P;
  // Expected content per page: a value, or -1 for "old value or 0" (after MADV_FREE).
  const want = new Float64Array(npages);
  const maybe = new Float64Array(npages);
  let hole = -1; // a munmapped 2 MiB region, remapped later
  const pick = () => Math.floor(rnd() * npages);
  const inHole = (i: number) => hole >= 0 && i >= hole && i < hole + 512;
  for (let step = 0; step < steps; step++) {
    const r = rnd();
    const i = pick();
    if (inHole(i)) continue;
    const hva = base + i * P;
    if (kswapd === "agent" && rnd() < 0.3) k.kswapdStep();
    if (r < 0.6) {
      const v = (Math.floor(rnd() * 0xfffffffe) + 1) >>> 0;
      const got = k.userAccess(mm, hva, true, v);
      if (got < 0) {
        expect(mm.dead).toBe(true);
        return true;
      }
      want[i] = v;
      maybe[i] = 0;
    } else if (r < 0.95) {
      const got =
        rnd() < 0.5
          ? k.userAccess(mm, hva, false)
          : (() => {
              const g = k.getUserPages(mm, hva, rnd() < 0.3);
              return g.ok ? k.mem.content[g.pfn]! : -1;
            })();
      if (got < 0) {
        expect(mm.dead).toBe(true);
        return true;
      }
      if (maybe[i] !== 0) {
        // Lazyfree until written again: the old value while it survives, then zeroes.
        expect(got === maybe[i] || got === 0, `page ${i} after MADV_FREE read ${got}`).toBe(true);
        if (got === 0) maybe[i] = 0;
      } else {
        expect(got, `page ${i} at step ${step}`).toBe(want[i]);
      }
    } else {
      const len = 1 + Math.floor(rnd() * (rnd() < 0.03 ? 700 : 24));
      const end = Math.min(npages, i + len);
      if (hole >= 0 && i < hole + 512 && end > hole) continue;
      const advice = (["dontneed", "free", "pageout", "cold", "hugepage", "nohugepage"] as const)[Math.floor(rnd() * 6)]!;
      if (r > 0.995 && hole < 0) {
        hole = i - (i % 512);
        k.munmap(mm, base + hole * P, 512 * P);
        for (let j = hole; j < hole + 512; j++) want[j] = maybe[j] = 0;
        continue;
      }
      if (r > 0.99 && hole >= 0) {
        k.mmap(mm, 512 * P, { addr: base + hole * P, noreserve: true });
        hole = -1;
        continue;
      }
      k.madvise(mm, hva, (end - i) * P, advice);
      for (let j = i; j < end; j++) {
        if (advice === "dontneed") want[j] = maybe[j] = 0;
        else if (advice === "free" && (want[j] !== 0 || maybe[j] !== 0)) {
          maybe[j] = maybe[j] || want[j]!;
          want[j] = 0;
        }
      }
    }
    expect(notifier.depth).toBe(0);
    if (step % 500 === 0) k.checkInvariants();
  }
  k.checkInvariants();
  for (let i = 0; i < npages; i++) {
    if (inHole(i)) continue;
    const got = k.userAccess(mm, base + i * P, false);
    if (got < 0) return true;
    if (maybe[i] !== 0) expect(got === maybe[i] || got === 0).toBe(true);
    else expect(got, `final page ${i}`).toBe(want[i]);
  }
  if (process.env.FUZZ_STATS) console.log(seed, JSON.stringify(k.vmstat()));
  k.exit(mm);
  expect(k.nrFreePages + (k.hugeZeroPfn >= 0 ? 512 : 0)).toBe(k.managedPages);
  expect(k.swap!.nrSwapPages).toBe(k.swap!.totalSwapPages);
  return false;
}

describe("random operations against an oracle", () => {
  for (const [seed, thp, pc] of [
    [1, "never", 0],
    [2, "always", 0],
    [3, "madvise", 3],
    [4, "always", 2],
  ] as const) {
    it(`seed ${seed}, thp ${thp}, page-cluster ${pc}`, () => expect(run(seed, thp, pc, 6000)).toBe(false));
  }
  it("kswapd as an agent stepped at random, direct reclaim in between", () =>
    expect(run(5, "always", 1, 6000, 24 * MiB, "agent")).toBe(false));
  it("swap too small: the OOM killer ends the run, with no wrong value before", () =>
    expect(run(6, "never", 0, 20000, 2 * MiB)).toBe(true));
});
