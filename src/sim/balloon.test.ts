// SPDX-License-Identifier: MIT
// virtio-balloon and free page reporting end to end: QEMU discards what the guest driver hands
// it (MADV_DONTNEED, so KVM's entries go through the mmu_notifier), host RSS follows, the guest
// gets the memory back on deflate or from its OOM notifier, and no value is lost.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { Engine, RunError } from "./engine.js";
import type { Report } from "./report.js";
import { loadScenario } from "./scenario_load.js";

const MiB = 2 ** 20;

function run(yaml: string): { report: Report; engine: Engine } {
  const engine = new Engine(loadScenario(yaml, "balloon.yaml"));
  return { report: engine.run(), engine };
}

const phaseRss = (r: Report, name: string) => r.phases!.find((p) => p.name === name)!.vms[0]!.qemu.rssBytes;

/** A 256 MiB guest, its RAM preallocated (every page backed), writing 4 MiB, ballooned to `target`, then back to 256 MiB. */
function inflateDeflate(mmu: string, target: string) {
  return `
seed: 1
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    mmu: ${mmu}
    prealloc: true
    balloon: {}
    processes:
      - name: p0
        steps:
          - mmap: {name: warm, size: 4MiB}
          - touch: {name: warm, op: write}
          - phase: inflate
          - touch: {name: warm, op: read}
          - phase: deflate
          - mmap: {name: again, size: 32MiB}
          - touch: {name: again, op: write}
          - touch: {name: warm, op: read}
timeline:
  - at: {phase: inflate}
    balloon: {vm: vm0, target: ${target}}
  - at: {phase: deflate}
    balloon: {vm: vm0, target: 256MiB}
`;
}

describe("virtio-balloon", () => {
  for (const mmu of ["ept", "npt", "shadow"])
    test(`${mmu}: inflating by 192 MiB lowers RSS by 192 MiB; deflated pages fault back in on the next touch`, () => {
      const { report: r } = run(inflateDeflate(mmu, "64MiB"));
      const vm = r.vms[0]!;
      expect(phaseRss(r, "start")).toBe(256 * MiB); // -mem-prealloc
      expect(phaseRss(r, "inflate")).toBe(64 * MiB); // 49,152 pages discarded
      expect(vm.guest.balloon_inflate).toBe(49152);
      expect(vm.guest.balloon_deflate).toBe(49152);
      expect(vm.guest.nr_balloon_pages).toBe(0);
      expect(vm.balloon).toEqual({
        targetPages: 0,
        actualPages: 0,
        inflatedPages: 49152,
        deflatedPages: 49152,
        reportedPages: 0,
        discardCalls: 49152, // one ram_block_discard_range() per 4 KiB balloon page
      });
      // The guest's 32 MiB of new data and its new page tables land on deflated frames: each is a host fault.
      const refaults = (phaseRss(r, "deflate") - 64 * MiB) / PAGE_SIZE;
      expect(r.phases!.find((p) => p.name === "deflate")!.vms[0]!.qemu.minFlt).toBe(refaults);
      expect(vm.qemu.minFlt).toBe(65536 + refaults);
      expect(refaults).toBeGreaterThanOrEqual(8192);
      expect(r.check.dataErrors).toBe(0);
      expect(r.check.invariantViolations).toBe(0);
    });

  test("deflate-on-oom: the OOM notifier gives back 256 pages at a time instead of failing the guest", () => {
    const yaml = (deflateOnOom: boolean) => `
seed: 1
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    balloon: {deflateOnOom: ${deflateOnOom}}
    processes:
      - name: p0
        steps:
          - mmap: {name: warm, size: 1MiB}
          - touch: {name: warm, op: write}
          - phase: full
          - mmap: {name: big, size: 40MiB}
          - touch: {name: big, op: write}
timeline:
  - at: {phase: full}
    balloon: {vm: vm0, target: 16MiB}
`;
    expect(() => run(yaml(false))).toThrow(RunError);
    const { report: r } = run(yaml(true));
    const g = r.vms[0]!.guest;
    expect(g.balloon_inflate).toBe(12288);
    expect(g.balloon_deflate % 256).toBe(0);
    expect(g.balloon_deflate).toBeGreaterThan(0);
    expect(g.nr_balloon_pages).toBe(12288 - g.balloon_deflate);
    expect(g.nr_free_pages).toBeLessThan(256); // it deflated only when the allocator was empty
    expect(r.vms[0]!.balloon!.targetPages).toBe(12288); // the host's target stays
    expect(r.check.dataErrors).toBe(0);
  });

  test("scenario errors: a balloon action on a VM without the device, a target above RAM, hugetlb backing", () => {
    const base = (vm: string, action: string) => `
host: {ram: 1GiB}
vms:
  - {name: vm0, ram: 64MiB, ${vm} processes: []}
timeline:
  - {at: {accesses: 0}, balloon: ${action}}
`;
    expect(() => loadScenario(base("", "{vm: vm0, target: 32MiB}"), "b.yaml")).toThrow(/timeline\[0\]\.balloon\.vm.*no balloon device/s);
    expect(() => loadScenario(base("balloon: {},", "{vm: vm0, target: 128MiB}"), "b.yaml")).toThrow(/more than the VM's RAM/);
    expect(() => loadScenario(base("backing: hugetlb-2m, balloon: {},", "{vm: vm0, target: 32MiB}"), "b.yaml")).toThrow(
      /partially ballooned huge pages/,
    );
  });
});

describe("free page reporting", () => {
  /** The guest writes 128 MiB, frees it, and goes idle; RAM preallocated so every reported page was backed. */
  const yaml = (reporting: boolean, prealloc: boolean) => `
seed: 1
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    prealloc: ${prealloc}
    balloon: {freePageReporting: ${reporting}}
    processes:
      - name: p0
        steps:
          - mmap: {name: warm, size: 4MiB}
          - touch: {name: warm, op: write}
          - mmap: {name: big, size: 128MiB}
          - touch: {name: big, op: write}
          - munmap: {name: big}
          - touch: {name: warm, op: read}
`;

  test("every free block of order 9 or more is reported once and discarded; smaller ones are not", () => {
    const { report: r, engine } = run(yaml(true, true));
    const a = engine.machine.vms[0]!.guest.alloc;
    let large = 0;
    for (let o = 9; o <= a.maxOrder; o++) large += a.nrFreeArea[o]! * 2 ** o;
    const g = r.vms[0]!.guest;
    expect(g.pages_reported).toBe(large);
    expect(g.nr_free_pages - g.pages_reported).toBeLessThan(512 * 9); // at most one block of each order 0..8 left out
    expect(r.vms[0]!.qemu.rssBytes).toBe(256 * MiB - large * PAGE_SIZE);
    expect(r.check.dataErrors).toBe(0);
    expect(r.check.invariantViolations).toBe(0);
  });

  test("the high-water mark: without reporting the host keeps what the guest freed", () => {
    const on = run(yaml(true, false)).report.vms[0]!;
    const off = run(yaml(false, false)).report.vms[0]!;
    expect(off.guest.pages_reported).toBe(0);
    expect(off.qemu.rssBytes).toBeGreaterThan(128 * MiB);
    expect(on.qemu.rssBytes).toBeLessThan(8 * MiB);
    // What reporting discarded that the host had backed is exactly the RSS difference.
    expect((off.qemu.rssBytes - on.qemu.rssBytes) / PAGE_SIZE).toBeLessThanOrEqual(on.guest.pages_reported);
    expect(on.guest.nr_free_pages).toBe(off.guest.nr_free_pages);
  });
});
