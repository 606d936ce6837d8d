// SPDX-License-Identifier: MIT
// The data checker's expectations: what a discarded range, a lazily freed one and a write after
// it make a page read, under each MMU (the checker asks the vCPU's MMU which guest frame an
// access reached).
import { describe, expect, test, vi } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { PG_buddy } from "../host/page_flags.js";
import { ACC_WRITE } from "../hw/mmu_defs.js";
import { LEAF_CACHE_BYTES, LEAF_MASK } from "../hw/paged_array.js";
import { PhysMem } from "../hw/phys_mem.js";
import { Prng } from "../workload/prng.js";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { BatchedAccesses } from "./access_batch.js";
import { UNKNOWN_TAG } from "./checker.js";
import { Machine } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

const PAGES = 16;

function setup(mmu: string) {
  const m = new Machine(
    loadScenario(
      `
seed: 1
host: {ram: 256MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    mmu: ${mmu}
    processes:
      - {name: p0, steps: []}
`,
      "checker.yaml",
    ),
  );
  const ps = m.vms[0]!.procs[0]!;
  const vm = ps.vm;
  vm.contextSwitch(ps.proc, ps.cpu);
  const gva = vm.mmap(ps.proc, "buf", PAGES * PAGE_SIZE);
  /** Accesses every page of the region; returns the host frame of each. */
  const touch = (op: number) => {
    const frames: number[] = [];
    for (let i = 0; i < PAGES; i++) {
      m.runAccess(ps, gva + i * PAGE_SIZE, op);
      frames.push(Math.floor(vm.qemu.kvm.vcpus[ps.cpu]!.mmu.hpa / PAGE_SIZE));
    }
    return frames;
  };
  return { m, ps, touch, ramBytes: 64 * 2 ** 20 };
}

/** Sets every frame's content tag, as if the host had replaced the pages behind the guest's back. */
function scribble(m: Machine, frames: number[]): void {
  for (const f of frames) m.host.mem.content[f] = 0x5eed;
}

describe("the data checker", () => {
  for (const mmu of ["ept", "shadow"])
    test(`${mmu}: after MADV_FREE a page may read anything, until the guest writes it again`, () => {
      const { m, touch, ramBytes } = setup(mmu);
      const frames = touch(OP_WRITE);
      expect(m.checker.dataErrors).toBe(0);
      m.checker.rangeDiscarded(0, 0, ramBytes, "FREE");
      scribble(m, frames);
      touch(OP_READ);
      expect(m.checker.dataErrors).toBe(0);
      touch(OP_WRITE);
      scribble(m, frames);
      touch(OP_READ);
      expect(m.checker.dataErrors).toBe(PAGES);
      expect(m.checker.violations[0]).toMatch(/read 0x5eed, expected 0x[0-9a-f]+$/);
    });

  test("a frame nobody wrote still reads zero after MADV_FREE", () => {
    const { m, touch, ramBytes } = setup("ept");
    m.checker.rangeDiscarded(0, 0, ramBytes, "FREE");
    const frames = touch(OP_READ);
    expect(m.checker.dataErrors).toBe(0);
    // The reads mapped the host's zero page: make it read otherwise, and each read is wrong.
    expect(new Set(frames).size).toBe(1);
    scribble(m, frames);
    touch(OP_READ);
    m.host.mem.content[frames[0]!] = 0;
    expect(m.checker.dataErrors).toBe(PAGES);
    expect(m.checker.violations[0]).toMatch(/read 0x5eed, expected 0x0$/);
  });

  test("what a process wrote is forgotten when it unmaps the range, and its next mapping there reads zero", () => {
    const { m, ps, touch } = setup("npt");
    touch(OP_WRITE);
    const vm = ps.vm;
    const region = ps.proc.vmas[0]!;
    vm.munmap(ps.proc, region.start, PAGES * PAGE_SIZE, ps.cpu);
    const again = vm.mmap(ps.proc, "buf2", PAGES * PAGE_SIZE);
    expect(again).toBe(region.start);
    touch(OP_READ);
    expect([m.checker.dataErrors, m.checker.violations]).toEqual([0, []]);
  });
});

/** Two identical machines, driven with the same accesses: one runAccess() each, and BatchedAccesses.run() batches. */
function pairOf() {
  const each = setup("ept");
  const batch = setup("ept");
  const gva = batch.ps.proc.vmas[0]!.start;
  const batched = new BatchedAccesses(batch.m, 64);
  const addrs = new Float64Array(64);
  const opsOf = new Uint8Array(64);
  /** gfn of each page, as the per-access machine's last translation of it left it. */
  const gfnOf: number[] = [];
  let clock = 0;
  const addr = (i: number, first: number) => gva + ((first + i) % PAGES) * PAGE_SIZE + 8 * i;
  const run = (ops: number[], first = 0) => {
    for (let i = 0; i < ops.length; i++) {
      addrs[i] = addr(i, first);
      opsOf[i] = ops[i]!;
      each.m.runAccess(each.ps, addr(i, first), ops[i]!);
      gfnOf[(first + i) % PAGES] = Math.floor(each.m.vms[0]!.qemu.kvm.vcpus[0]!.mmu.gpa / PAGE_SIZE);
    }
    expect(batched.run(batch.ps, addrs, opsOf, ops.length, clock)).toBe(true);
    clock += ops.length;
  };
  const both = (f: (m: Machine) => void) => {
    f(each.m);
    f(batch.m);
  };
  const same = () => {
    for (const k of ["dataErrors", "valuesRead", "readDigest"] as const) expect(batch.m.checker[k]).toBe(each.m.checker[k]);
    expect(batch.m.checker.violations).toEqual(each.m.checker.violations);
  };
  return { each, batch, run, both, same, gfnOf };
}
const ops = (n: number, op: number) => Array.from({ length: n }, () => op);

describe("the batched loop's data check (sim/access_batch.ts)", () => {
  const pair = pairOf;

  test("finds the same data errors, reads and digest as one runAccess() per access", () => {
    const { batch, run, both, same } = pair();
    // First writes fault in (the core hands each exit back to JS); then reads and writes mixed.
    run(ops(PAGES, OP_WRITE));
    run(Array.from({ length: 48 }, (_, i) => (i % 3 === 0 ? OP_WRITE : OP_READ)));
    expect([batch.m.checker.dataErrors, batch.m.checker.valuesRead]).toEqual([0, 32]);
    // The host replaces 5 of the 16 data pages behind the guest's back: each read of them is wrong.
    both((m) => {
      const data = [...m.host.mem.content.keys()].filter((f) => m.host.mem.content[f] !== 0);
      expect(data.length).toBe(PAGES);
      scribble(m, data.slice(0, 5));
    });
    run(ops(PAGES, OP_READ));
    expect(batch.m.checker.dataErrors).toBe(5);
    expect(batch.m.checker.violations[0]).toMatch(/read 0x5eed, expected 0x[0-9a-f]+$/);
    same();
  });

  test("a read that matches what the process wrote but not what its frame should hold is an error, batched too", () => {
    const { batch, run, both, same, gfnOf } = pair();
    run(ops(PAGES, OP_WRITE));
    // The guest's clear_page of 3 frames still in use: they should read zero, and they read the old values.
    both((m) => {
      for (const gfn of gfnOf.slice(0, 3)) m.checker.frameCleared(0, gfn);
    });
    run(ops(PAGES, OP_READ));
    expect(batch.m.checker.dataErrors).toBe(3);
    expect(batch.m.checker.violations[0]).toMatch(/expected 0x0$/);
    same();
  });

  test("a write whose value is the unknown tag's bits makes its MADV_FREE'd page checked again", () => {
    const { batch, run, both, same, gfnOf } = pair();
    run(ops(PAGES, OP_WRITE));
    both((m) => m.checker.rangeDiscarded(0, 0, 64 * 2 ** 20, "FREE"));
    // The next write stores 0xffffffff (Machine.nextWriteValue: imul(seq, 0x9e3779b1) | 1).
    const inverse = Number(BigInt.asUintN(32, modInverse(0x9e3779b1n, 2n ** 32n) * 0xffffffffn));
    both((m) => {
      (m as unknown as { writeSeq: number }).writeSeq = inverse - 1;
    });
    run([OP_WRITE], 3);
    both((m) => {
      const frame = [...m.host.mem.content.keys()].find((f) => m.host.mem.content[f] === 0xffffffff)!;
      expect(frame).toBeDefined();
      scribble(m, [frame]);
    });
    expect(gfnOf[3]).toBeGreaterThan(0);
    run([OP_READ], 3);
    expect(batch.m.checker.dataErrors).toBe(1);
    expect(batch.m.checker.violations[0]).toMatch(/read 0x5eed, expected 0xffffffff$/);
    same();
  });
});

describe("the data check in the wasm core (hw/asm/data_check.ts)", () => {
  /** The same machine pair as above, counting the accesses the core handed back to JS (Checker.accessTdpRun). */
  function counted() {
    const p = pairOf();
    let inJs = 0;
    const js = p.batch.m.checker.accessTdpRun.bind(p.batch.m.checker);
    vi.spyOn(p.batch.m.checker, "accessTdpRun").mockImplementation((ps, values, b, i, k) => {
      inJs += k - i;
      js(ps, values, b, i, k);
    });
    return { ...p, handedBack: () => inJs, reset: () => void (inJs = 0) };
  }

  test("the core's leaf, remembered-leaf, write-bit and unknown-tag constants are JS's", () => {
    const core = new PhysMem(16 * PAGE_SIZE).wasm.core();
    expect(core.constant("DC_LEAF_MASK")).toBe(LEAF_MASK);
    expect((core.constant("DC_CACHE_MASK") + 1) * 12).toBe(LEAF_CACHE_BYTES);
    expect(core.constant("DC_WRITE")).toBe(ACC_WRITE);
    expect(core.constant("DC_UNKNOWN")).toBe(UNKNOWN_TAG | 0);
  });

  test("settles every read and write of written pages in the core", () => {
    const { batch, run, same, handedBack, reset } = counted();
    // First writes fault (an EPT violation each): checked one at a time where the exit is handled, none handed back.
    run(ops(PAGES, OP_WRITE));
    expect(handedBack()).toBe(0);
    reset();
    run(Array.from({ length: 64 }, (_, i) => (i % 4 === 0 ? OP_WRITE : OP_READ)));
    expect(handedBack()).toBe(0);
    expect([batch.m.checker.dataErrors, batch.m.checker.valuesRead]).toEqual([0, 48]);
    same();
  });

  test("hands back a read of a frame in the buddy allocator, and the checker reports it as one access at a time does", () => {
    const { batch, run, both, same, handedBack, reset } = counted();
    run(ops(PAGES, OP_WRITE));
    both((m) => {
      const data = [...m.host.mem.content.keys()].filter((f) => m.host.mem.content[f] !== 0);
      for (const f of data.slice(0, 2)) m.host.meta.flags[f] = m.host.meta.flags[f]! | PG_buddy;
    });
    reset();
    run(ops(PAGES, OP_READ));
    expect(handedBack()).toBe(2);
    expect(batch.m.checker.invariantViolations).toBe(2);
    same();
  });

  test("random reads, writes, scribbles, frames cleared and MADV_FREE: the same errors, reads and digest as one access at a time", () => {
    const { batch, run, both, same, gfnOf, handedBack } = counted();
    run(ops(PAGES, OP_WRITE));
    const rng = new Prng(7);
    for (let round = 0; round < 40; round++) {
      const n = 1 + rng.nextInt(64);
      run(
        Array.from({ length: n }, () => (rng.nextFloat() < 0.3 ? OP_WRITE : OP_READ)),
        rng.nextInt(PAGES),
      );
      const what = rng.nextInt(4);
      const page = rng.nextInt(PAGES);
      both((m) => {
        if (what === 0) {
          const data = [...m.host.mem.content.keys()].filter((f) => m.host.mem.content[f] !== 0);
          scribble(m, [data[page % data.length]!]);
        } else if (what === 1) m.checker.frameCleared(0, gfnOf[page]!);
        else if (what === 2) m.checker.rangeDiscarded(0, gfnOf[page]! * PAGE_SIZE, PAGE_SIZE, "FREE");
      });
    }
    expect(batch.m.checker.dataErrors).toBeGreaterThan(0);
    expect(batch.m.checker.valuesRead).toBeGreaterThan(500);
    // Most accesses are settled in the core.
    expect(handedBack()).toBeLessThan(batch.m.checker.valuesRead / 4);
    same();
  });
});

/** a^-1 mod m, for the write value whose bits are the unknown tag's. */
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}
