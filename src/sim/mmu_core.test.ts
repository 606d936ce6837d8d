// SPDX-License-Identifier: MIT
// The whole machine on either MMU implementation (hw/mmu_core.ts): the wasm core, the default,
// and the JS reference give the same report, counter for counter, under every MMU mode, with
// reclaim and swap, huge pages, 5-level paging and several vCPUs.
import { describe, expect, test } from "vitest";
import { Mmu } from "../hw/mmu.js";
import type { MmuCore } from "../hw/mmu_core.js";
import { WasmMmu } from "../hw/wasm_mmu.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

function scenario(mmu: string, extra: { levels?: number; backing?: string; vcpus?: number }): string {
  return `
seed: 5
host: {ram: 96MiB, swap: 64MiB, thp: ${extra.backing === "thp" ? "always" : "never"}}
vms:
  - name: vm0
    ram: 128MiB
    mmu: ${mmu}
    vcpus: ${extra.vcpus ?? 1}
    backing: ${extra.backing ?? "4k"}
    guest: {levels: ${extra.levels ?? 4}}
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 96MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 40000, writeRatio: 0.3}
`;
}

/** The report of a run on `mmuCore`, after checking that every vCPU and twin CPU runs on it (and `before`, given the engine). */
function run(yaml: string, mmuCore: MmuCore, before?: (e: Engine) => void) {
  const e = new Engine(loadScenario(yaml, "mmu-core.yaml"), { mmuCore });
  before?.(e);
  const Impl = mmuCore === "wasm" ? WasmMmu : Mmu;
  for (const vm of e.machine.vms) {
    for (const v of vm.qemu.kvm.vcpus) expect(v.mmu).toBeInstanceOf(Impl);
    for (const p of vm.native!.cpus) expect(p.mmu).toBeInstanceOf(Impl);
  }
  return e.run();
}

/** The data check's own paths under batching: unwritten pages read, KSM content classes and zero writes, MADV_FREE'd frames that may read anything, a range unmapped and mapped again. */
const CHECKER_PATHS = `
seed: 7
host: {ram: 256MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 128MiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: a, size: 8MiB}
          - random: {name: a, accesses: 20000, writeRatio: 0.3, content: {dup: 4}}
          - random: {name: a, accesses: 20000, writeRatio: 0.3, content: zero}
          - munmap: {name: a}
          - mmap: {name: b, size: 8MiB}
          - random: {name: b, accesses: 30000, writeRatio: 0.5}
timeline:
  - at: {accesses: 30000}
    madvise: {vm: vm0, gpa: 0, size: 64MiB, advice: FREE}
  - at: {accesses: 60000}
    madvise: {vm: vm0, gpa: 0, size: 64MiB, advice: DONTNEED}
`;

describe("the machine on the wasm core and on the JS MMU", () => {
  test("the data check's paths (unwritten reads, content classes, MADV_FREE and DONTNEED, munmap): the same report", () => {
    const wasm = run(CHECKER_PATHS, "wasm");
    expect(wasm.check.valuesRead).toBeGreaterThan(30000);
    // DONTNEED of pages the guest still uses loses what it wrote there: the check says so, on both paths.
    expect(wasm.check.dataErrors).toBeGreaterThan(0);
    expect(JSON.stringify(wasm)).toBe(JSON.stringify(run(CHECKER_PATHS, "js")));
  });

  test("a 1 TiB host, whose MMU states and batches sit above 2 GiB of wasm memory (per-frame arrays below): the same report", () => {
    const yaml = `
seed: 3
host: {ram: 1TiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 1GiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 4MiB}
          - random: {name: heap, accesses: 20000, writeRatio: 0.3}
`;
    const wasm = run(yaml, "wasm", (e) => {
      const hw = e.machine.vms[0]!.qemu.kvm.vcpus[0]!.mmu as WasmMmu;
      // Addresses are unsigned: an i32 view or a signed shift of one above 2^31 reads elsewhere.
      expect(hw.mem.wasm.alloc(8)).toBeGreaterThan(2 ** 31);
    });
    expect(wasm.check.valuesRead).toBeGreaterThan(10000);
    expect(wasm.check.dataErrors).toBe(0);
    expect(JSON.stringify(wasm)).toBe(JSON.stringify(run(yaml, "js")));
  }, 60_000);

  for (const [mmu, extra] of [
    ["ept", {}],
    ["npt", { levels: 5, vcpus: 2 }],
    ["shadow", {}],
    ["ept", { backing: "thp" }],
  ] as const) {
    test(`${mmu} ${JSON.stringify(extra)}: the same report`, () => {
      const yaml = scenario(mmu, extra);
      const wasm = run(yaml, "wasm");
      expect(wasm.host.vmstat.pswpout).toBeGreaterThan(0);
      expect(JSON.stringify(wasm)).toBe(JSON.stringify(run(yaml, "js")));
    });
  }
});
