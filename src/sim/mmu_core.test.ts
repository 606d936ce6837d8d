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

/** The report of a run on `mmuCore`, after checking that every vCPU and twin CPU runs on it. */
function run(yaml: string, mmuCore: MmuCore) {
  const e = new Engine(loadScenario(yaml, "mmu-core.yaml"), { mmuCore });
  const Impl = mmuCore === "wasm" ? WasmMmu : Mmu;
  for (const vm of e.machine.vms) {
    for (const v of vm.qemu.kvm.vcpus) expect(v.mmu).toBeInstanceOf(Impl);
    for (const p of vm.native!.cpus) expect(p.mmu).toBeInstanceOf(Impl);
  }
  return e.run();
}

describe("the machine on the wasm core and on the JS MMU", () => {
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
