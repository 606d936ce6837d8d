// SPDX-License-Identifier: MIT
// One test per kernel rule the checker relies on, each on the rule itself rather than a count:
// a read-only host mapping stays read-only in EPT/NPT and shadow; a remote flush reaches every
// vCPU in guest mode; a notifier zap covers its whole range and nothing more; aging clears the
// accessed state it reports. The mutation suite (tools/mutants.mjs) breaks each rule in turn.
import { describe, expect, test } from "vitest";
import { ACC_USER, ACC_WRITE, XLATE_OK } from "../hw/mmu.js";
import { spteWritable } from "../kvm/spte.js";
import { TdpMmu } from "../kvm/tdp_mmu.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

const MMUS = ["ept", "npt", "shadow"] as const;
const R0 = 0x80000000;
const R1 = 0x90000000;

/** A guest without a kernel: two regions of 16 pages, a process on each of `vcpus` vCPUs running `steps`. */
function engine(mmu: string, steps: string[][], vcpus = steps.length): Engine {
  const procs = steps
    .map((s, i) => `      - name: g${i}\n        vcpu: ${i}\n        steps:\n${s.map((x) => `          - ${x}`).join("\n")}`)
    .join("\n");
  const yaml = `
seed: 1
host: {ram: 256MiB, swap: 128MiB, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    vcpus: ${vcpus}
    mmu: ${mmu}
    guest:
      kernel: none
      spaces:
        - name: s0
          regions:
            - {name: r0, gva: 0x${R0.toString(16)}, size: 64KiB}
            - {name: r1, gva: 0x${R1.toString(16)}, size: 64KiB}
    processes:
${procs}
`;
  return new Engine(loadScenario(yaml, "rules.yaml"), { sampleEvery: 0 });
}

function clean(e: Engine): void {
  const r = e.run();
  expect([r.check.dataErrors, r.check.invariantViolations, r.check.messages]).toEqual([0, 0, []]);
}

describe("a read-only host mapping stays read-only in the guest's MMU", () => {
  for (const mmu of MMUS) {
    test(`${mmu}: pages read first map the host zero page read-only; writing one never writes the zero page`, () => {
      const e = engine(mmu, [
        ["touch: {name: r0, op: read}", "touch: {name: r1, op: read}", "touch: {name: r0, op: write}", "touch: {name: r1, op: read}"],
      ]);
      clean(e);
      const host = e.machine.host;
      expect(host.mem.content[host.zeroPfn]).toBe(0);
      const kvm = e.machine.vms[0]!.qemu.kvm;
      let zeroLeaves = 0;
      kvm.forEachLeaf((gfn, _level, pfn) => {
        if (pfn !== host.zeroPfn) return;
        zeroLeaves++;
        const tdp = kvm.mmu;
        if (tdp instanceof TdpMmu) {
          expect(tdp.lookup(gfn)).toBe(true);
          expect(spteWritable(tdp.masks, tdp.leafLo)).toBe(false);
        }
      });
      // r1's 16 pages (never written) still map the zero page; under shadow paging by gva, so per page too.
      expect(zeroLeaves).toBe(16);
    });
  }
});

describe("a remote TLB flush reaches every vCPU in guest mode", () => {
  for (const mmu of MMUS) {
    test(`${mmu}: after the host pages out all guest RAM, each vCPU's next access exits and re-faults`, () => {
      const e = engine(mmu, [["touch: {name: r0, op: write}"], ["touch: {name: r1, op: write}"]]);
      clean(e);
      const vm = e.machine.vms[0]!;
      const vcpus = vm.qemu.kvm.vcpus;
      const gvas = [R0, R1];
      // Both vCPUs back in guest mode with the page in their TLBs.
      for (let i = 0; i < 2; i++) expect(vcpus[i]!.access(gvas[i]!, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
      const faults = vcpus.map((v) => v.stats.pf_taken);
      vm.qemu.madvise(0, 64 * 2 ** 20, "PAGEOUT");
      for (let i = 0; i < 2; i++) {
        expect(vcpus[i]!.access(gvas[i]!, ACC_USER)).toBe(XLATE_OK);
        expect(vcpus[i]!.stats.pf_taken).toBeGreaterThan(faults[i]!);
      }
      expect(e.machine.checker.checkStaleMappings()).toBe(0);
    });
  }
});

describe("a notifier zap covers its whole range and nothing more", () => {
  for (const mmu of MMUS) {
    test(`${mmu}: MADV_DONTNEED of 5 pages removes exactly their leaves`, () => {
      const e = engine(mmu, [["touch: {name: r0, op: write}"]]);
      clean(e);
      const vm = e.machine.vms[0]!;
      const kvm = vm.qemu.kvm;
      const leaves = () => {
        const s = new Set<number>();
        kvm.forEachLeaf((gfn, level) => {
          if (level === 1) s.add(gfn);
        });
        return s;
      };
      const before = [...leaves()].sort((a, b) => a - b);
      // The data pages are written in order: find a run of 7 consecutive gfns and zap its middle 5.
      const start = before.find((g) => [1, 2, 3, 4, 5, 6].every((d) => before.includes(g + d)))!;
      expect(start).toBeDefined();
      vm.qemu.madvise((start + 1) * 4096, 5 * 4096, "DONTNEED");
      const after = leaves();
      for (let g = start + 1; g <= start + 5; g++) expect(after.has(g)).toBe(false);
      expect([after.has(start), after.has(start + 6)]).toEqual([true, true]);
      expect(after.size).toBe(before.length - 5);
      expect(e.machine.checker.checkStaleMappings()).toBe(0);
    });
  }
});

describe("aging clears the accessed state it reports", () => {
  for (const mmu of MMUS) {
    test(`${mmu}: clear_young says young once, then old until the guest touches the page again`, () => {
      const e = engine(mmu, [["touch: {name: r0, op: write}"]]);
      clean(e);
      const vm = e.machine.vms[0]!;
      const kvm = vm.qemu.kvm;
      let gfn = -1;
      kvm.forEachLeaf((g, level) => {
        if (level === 1 && gfn < 0) gfn = g;
      });
      const hva = vm.qemu.gpaToHva(gfn * 4096);
      const mm = vm.qemu.mm;
      expect(kvm.notifier.clearYoung(mm, hva, hva + 4096)).toBe(true);
      expect(kvm.notifier.testYoung(mm, hva)).toBe(false);
      expect(kvm.notifier.clearYoung(mm, hva, hva + 4096)).toBe(false);
    });
  }
});
