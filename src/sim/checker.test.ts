// SPDX-License-Identifier: MIT
// The data checker's expectations: what a discarded range, a lazily freed one and a write after
// it make a page read, under each MMU (the checker asks the vCPU's MMU which guest frame an
// access reached).
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
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
