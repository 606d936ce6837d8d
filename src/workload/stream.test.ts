// SPDX-License-Identifier: MIT
// Each generator makes the access pattern it claims (footprint, read/write ratio, locality)
// and the same stream for the same seed.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { CoreMemory } from "../hw/wasm_memory.js";
import { Prng } from "./prng.js";
import {
  AccessBatch,
  type AccessStream,
  OP_WRITE,
  PhasesStream,
  PointerChaseStream,
  RandomStream,
  SequentialStream,
  TouchStream,
  ZipfStream,
} from "./stream.js";

const BASE = 0x7f0000000000;
const MiB = 2 ** 20;

function drain(s: AccessStream): { addrs: number[]; writes: number } {
  const b = new AccessBatch(333);
  const addrs: number[] = [];
  let writes = 0;
  let n: number;
  while ((n = s.fill(b)) > 0) {
    for (let i = 0; i < n; i++) {
      addrs.push(b.addrs[i]!);
      if (b.ops[i] === OP_WRITE) writes++;
    }
  }
  return { addrs, writes };
}

/** [address, op] of each access of `s`, filled into batches of these capacities in turn. */
function inBatches(s: AccessStream, caps: number[]): number[][] {
  const got: number[][] = [];
  for (const cap of caps) {
    const b = new AccessBatch(cap);
    const n = s.fill(b);
    for (let i = 0; i < n; i++) got.push([b.addrs[i]!, b.ops[i]!]);
  }
  return got;
}

const pagesOf = (addrs: number[]) => new Set(addrs.map((a) => Math.floor(a / PAGE_SIZE)));
const inRegion = (addrs: number[], size: number) => addrs.every((a) => a >= BASE && a < BASE + size);

describe("generators", () => {
  test("touch: each page once, in address order", () => {
    const { addrs, writes } = drain(new TouchStream(BASE, 4 * MiB, OP_WRITE));
    expect(addrs).toHaveLength(1024);
    expect(addrs.every((a, i) => a === BASE + i * PAGE_SIZE)).toBe(true);
    expect(writes).toBe(1024);
  });

  test("random: uniform over the region; the write ratio holds; same seed, same stream", () => {
    const mk = () => new RandomStream(BASE, 4 * MiB, 100_000, 0.3, new Prng(5));
    const a = drain(mk());
    expect(a.addrs).toHaveLength(100_000);
    expect(inRegion(a.addrs, 4 * MiB)).toBe(true);
    expect(pagesOf(a.addrs).size).toBe(1024); // 100k uniform draws cover all 1024 pages
    expect(a.writes / 100_000).toBeCloseTo(0.3, 1);
    expect(drain(mk()).addrs).toEqual(a.addrs);
    expect(drain(new RandomStream(BASE, 4 * MiB, 1000, 0.3, new Prng(6))).addrs).not.toEqual(a.addrs.slice(0, 1000));
  });

  test("sequential/strided: fixed stride, wrapping at the end", () => {
    const { addrs } = drain(new SequentialStream(BASE, 64 * 1024, 40, 0, 4096, new Prng(1)));
    expect(addrs.slice(0, 17).map((a) => (a - BASE) / 4096)).toEqual([...Array(16).keys(), 0]);
  });

  test("zipf: the hottest 1% of pages take most accesses; all in the region", () => {
    const { addrs, writes } = drain(new ZipfStream(BASE, 16 * MiB, 100_000, 0.1, 1.2, new Prng(3)));
    expect(inRegion(addrs, 16 * MiB)).toBe(true);
    const counts = new Map<number, number>();
    for (const a of addrs) counts.set(Math.floor(a / PAGE_SIZE), (counts.get(Math.floor(a / PAGE_SIZE)) ?? 0) + 1);
    const sorted = [...counts.values()].sort((x, y) => y - x);
    const top = sorted.slice(0, 41).reduce((s, c) => s + c, 0); // 1% of 4096 pages
    expect(top / 100_000).toBeGreaterThan(0.6);
    expect(writes / 100_000).toBeCloseTo(0.1, 1);
  });

  test("pointerChase: one cycle through every node, no node twice before all are seen", () => {
    const nodes = (1 * MiB) / 64;
    const { addrs } = drain(new PointerChaseStream(BASE, 1 * MiB, nodes + 1, 64, 0, new Prng(9)));
    expect(new Set(addrs.slice(0, nodes)).size).toBe(nodes);
    expect(addrs[nodes]).toBe(addrs[0]);
    // Little spatial locality: consecutive accesses rarely share a page.
    let same = 0;
    for (let i = 1; i < nodes; i++) if (Math.floor(addrs[i]! / PAGE_SIZE) === Math.floor(addrs[i - 1]! / PAGE_SIZE)) same++;
    expect(same / nodes).toBeLessThan(0.01);
  });

  test("phases: each phase stays in a working set of the given size, and the set moves", () => {
    const s = new PhasesStream(BASE, 64 * MiB, 40_000, 1 * MiB, 4, 0, new Prng(2));
    const { addrs } = drain(s);
    const windows: number[] = [];
    for (let p = 0; p < 4; p++) {
      const chunk = addrs.slice(p * 10_000, (p + 1) * 10_000);
      const pages = [...pagesOf(chunk)];
      expect(Math.max(...pages) - Math.min(...pages)).toBeLessThan(256);
      windows.push(Math.min(...pages));
    }
    expect(new Set(windows).size).toBeGreaterThan(1);
  });

  test("random: each access is nextInt(pages), a word from nextU32(), a write if nextFloat() < writeRatio, whatever the batch sizes", () => {
    // The draws run on the wasm core (core_draws.ts), 4096 at a time; this is the JS reference.
    const size = 3 * MiB + 5 * PAGE_SIZE;
    const total = 10_000;
    const sRng = new Prng(11);
    const s = new RandomStream(BASE, size, total, 0.3, sRng);
    const rng = new Prng(11);
    const want = Array.from({ length: total }, () => {
      const page = rng.nextInt(size / PAGE_SIZE);
      const addr = BASE + page * PAGE_SIZE + (rng.nextU32() & 0xff8);
      return [addr, rng.nextFloat() < 0.3 ? OP_WRITE : 0];
    });
    const got = inBatches(s, [1, 7, 256, 333, 4096, 5000, 1000]);
    expect(got.length).toBe(total);
    expect(got).toEqual(want);
    // The stream's generator goes on where the reference's is.
    expect(sRng.nextU32()).toBe(rng.nextU32());
  });

  test("zipf: the core's draws and CDF lookup are the JS reference's, whatever the batch sizes", () => {
    const size = 2 * MiB + 7 * PAGE_SIZE;
    const pages = size / PAGE_SIZE;
    const total = 10_000;
    const sRng = new Prng(13);
    const s = new ZipfStream(BASE, size, total, 0.25, 0.99, sRng);
    // The reference: the same CDF and rank permutation, built from the same generator.
    const rng = new Prng(13);
    const cdf: number[] = [];
    let sum = 0;
    for (let k = 0; k < pages; k++) cdf.push((sum += 1 / (k + 1) ** 0.99));
    const ranks = Array.from({ length: pages }, (_, k) => k);
    for (let k = pages - 1; k > 0; k--) {
      const j = rng.nextInt(k + 1);
      [ranks[k], ranks[j]] = [ranks[j]!, ranks[k]!];
    }
    const want = Array.from({ length: total }, () => {
      const u = rng.nextFloat();
      const rank = cdf.findIndex((c) => c / sum >= u);
      const addr = BASE + ranks[rank]! * PAGE_SIZE + (rng.nextU32() & 0xff8);
      return [addr, rng.nextFloat() < 0.25 ? OP_WRITE : 0];
    });
    const got = inBatches(s, [1, 7, 256, 333, 4096, 5000, 1000]);
    expect(got.length).toBe(total);
    expect(got).toEqual(want);
    expect(sRng.nextU32()).toBe(rng.nextU32());
  });

  test("sequential and pointerChase: the core's accesses are the JS reference's, with and without writes, whatever the batch sizes", () => {
    const total = 9_000;
    const collect = (s: AccessStream) => inBatches(s, [1, 7, 256, 333, 4096, 5000]);
    for (const ratio of [0, 0.35]) {
      // A stride that does not divide the size: the offset wraps to 0, not to the remainder.
      const size = 1 * MiB + 100;
      const sRng = new Prng(21);
      const seq = collect(new SequentialStream(BASE, size, total, ratio, 4096 + 24, sRng));
      const rng = new Prng(21);
      let off = 0;
      const want = Array.from({ length: total }, () => {
        const a = [BASE + off, ratio > 0 && rng.nextFloat() < ratio ? OP_WRITE : 0];
        off += 4096 + 24;
        if (off >= size) off = 0;
        return a;
      });
      expect(seq).toEqual(want);
      expect(sRng.nextU32()).toBe(rng.nextU32());

      const cRng = new Prng(22);
      const chase = collect(new PointerChaseStream(BASE, 4 * MiB, total, 192, ratio, cRng));
      const ref = new Prng(22);
      const nodes = Math.floor((4 * MiB) / 192);
      const order = Array.from({ length: nodes }, (_, i) => i);
      for (let i = nodes - 1; i > 0; i--) {
        const j = ref.nextInt(i);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const next = new Array<number>(nodes);
      for (let i = 0; i < nodes; i++) next[order[i]!] = order[(i + 1) % nodes]!;
      let node = 0;
      const wantChase = Array.from({ length: total }, () => {
        const a = [BASE + node * 192, ratio > 0 && ref.nextFloat() < ratio ? OP_WRITE : 0];
        node = next[node]!;
        return a;
      });
      expect(chase).toEqual(wantChase);
      expect(cRng.nextU32()).toBe(ref.nextU32());
    }
  });

  test("phases: the core's uniform draws per phase are the JS reference's, across phase boundaries and batch sizes", () => {
    const size = 8 * MiB;
    const window = 1 * MiB + 3 * PAGE_SIZE;
    const total = 10_000;
    const perPhase = Math.ceil(total / 7);
    const sRng = new Prng(5);
    const s = new PhasesStream(BASE, size, total, window, 7, 0.4, sRng);
    const rng = new Prng(5);
    const regionPages = size / PAGE_SIZE;
    const windowPages = window / PAGE_SIZE;
    let windowBase = rng.nextInt(regionPages - windowPages + 1);
    const want = Array.from({ length: total }, (_, i) => {
      if (i > 0 && i % perPhase === 0) windowBase = rng.nextInt(regionPages - windowPages + 1);
      const page = windowBase + rng.nextInt(windowPages);
      const addr = BASE + page * PAGE_SIZE + (rng.nextU32() & 0xff8);
      return [addr, rng.nextFloat() < 0.4 ? OP_WRITE : 0];
    });
    const got = inBatches(s, [1, 7, 256, 1429, 1430, 4096, 5000]);
    expect(got.length).toBe(total);
    expect(got).toEqual(want);
    expect(s.phase).toBe(6);
    expect(sRng.nextU32()).toBe(rng.nextU32());
  });

  test("each stream of reads and writes fills a batch in a core memory, with that batch's kinds: the accesses it gives a JS batch", () => {
    // The engine hands such a stream a vCPU's batch (views of the host's core memory, ops as access
    // kinds): random, phases and sequential draw on that memory's core in place, zipf and
    // pointerChase copy in from their own. Between fills the memory grows, as a slice's faults grow the host's.
    const READ = 0x14;
    const WRITE = 0x16;
    const make = (seed: number): AccessStream[] => [
      new TouchStream(BASE, 2 * MiB, OP_WRITE),
      new TouchStream(BASE, 1 * MiB, 0),
      new RandomStream(BASE, 4 * MiB, 7000, 0.3, new Prng(seed)),
      new SequentialStream(BASE, 1 * MiB + 100, 7000, 0.35, 4096 + 24, new Prng(seed + 1)),
      new ZipfStream(BASE, 8 * MiB, 7000, 0.3, 0.9, new Prng(seed + 2)),
      new PointerChaseStream(BASE, 4 * MiB, 7000, 192, 0.3, new Prng(seed + 3)),
      new PhasesStream(BASE, 8 * MiB, 7000, 1 * MiB, 5, 0.4, new Prng(seed + 4)),
    ];
    const caps = [1, 7, 256, 333, 4096, 5000, 1000];
    const cm = new CoreMemory(1024, 1024);
    const cap = 5000;
    const at = cm.alloc(cap * 9);
    const buffers = new Set<ArrayBuffer>();
    const [plain, inCore] = [make(31), make(31)];
    plain.forEach((js, k) => {
      const want = inBatches(js, caps).map(([a, op]) => [a, op === OP_WRITE ? WRITE : READ]);
      const got: number[][] = [];
      for (const c of caps) {
        const buf = cm.memory.buffer;
        buffers.add(buf);
        const over = {
          addrs: new Float64Array(buf, at, cap),
          ops: new Uint8Array(buf, at + cap * 8, cap),
          kinds: READ | (WRITE << 8),
          core: cm,
        };
        const b = new AccessBatch(c, over);
        const n = inCore[k]!.fill(b);
        for (let i = 0; i < n; i++) got.push([b.addrs[i]!, b.ops[i]!]);
        cm.alloc(4 * MiB);
      }
      expect(inCore[k]!.readsAndWrites).toBe(true);
      expect(got.length, `stream ${k}`).toBe(want.length);
      expect(got, `stream ${k}`).toEqual(want);
    });
    expect(buffers.size).toBeGreaterThan(1);
  });
});
