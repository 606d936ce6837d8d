// SPDX-License-Identifier: MIT
// One suite for every CPU a kernel can run on (hw/cpu_port.ts): bare metal (NativeCpu) and a
// KVM vCPU under EPT, NPT and shadow paging. Each builds the same 4-level mapping through the
// port and must then translate, fault and invalidate the same way.
import { describe, expect, test } from "vitest";
import { HostKernel } from "../host/kernel.js";
import { QemuVm } from "../qemu/vm.js";
import { type Gfn, type Gpa, type Gva, PAGE_SIZE, tableIndex } from "./addr.js";
import type { Cpu } from "./cpu_port.js";
import { EventBus } from "./events.js";
import { ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "./mmu.js";
import { NativeCpu } from "./native_cpu.js";
import { PhysMem } from "./phys_mem.js";
import { PFERR_PRESENT, PFERR_USER, PFERR_WRITE, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, frameHi, frameLo } from "./x86_pte.js";

const MiB = 2 ** 20;
const FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
const GVA = 0x7f12_3456_7000;

interface Machine {
  cpu: Cpu;
  /** The physical frame the CPU's accesses reach for guest frame `gfn`. */
  frameOf(gfn: number): number;
}

const machines: [string, () => Machine][] = [
  [
    "bare metal",
    () => {
      const cpu = new NativeCpu(new PhysMem(64 * MiB), { levels: 4 });
      return { cpu, frameOf: (gfn) => gfn };
    },
  ],
  ...(["ept", "npt", "shadow"] as const).map((mmu): [string, () => Machine] => [
    `a vCPU under ${mmu}`,
    () => {
      const bus = new EventBus();
      const host = new HostKernel({ ram: 256 * MiB, swap: 0, thp: "never" }, bus);
      const qemu = new QemuVm(host, { name: "vm", ram: 64 * MiB, vcpus: 1, mmu, backing: "4k", prealloc: false, levels: 4 }, bus);
      const v = qemu.kvm.vcpus[0]!;
      v.setSregsPcide(true);
      return { cpu: v, frameOf: (gfn) => v.archMmu.readTable(gfn * PAGE_SIZE) };
    },
  ]),
];

/** Tables for GVA -> `data` from frame 0x100 up, written through the port; returns the root and the PTE's gpa. */
function mapPage(cpu: Cpu, data: number): { root: number; pte: number } {
  let next = 0x100;
  const root = next++;
  cpu.zeroPage(root as Gfn);
  let table = root;
  for (let level = 4; level > 1; level--) {
    const t = next++;
    cpu.zeroPage(t as Gfn);
    cpu.writeEntry((table * PAGE_SIZE + tableIndex(GVA, level) * 8) as Gpa, frameLo(t, FLAGS), frameHi(t));
    table = t;
  }
  const pte = table * PAGE_SIZE + tableIndex(GVA, 1) * 8;
  cpu.writeEntry(pte as Gpa, frameLo(data, FLAGS), frameHi(data));
  return { root, pte };
}

describe.each(machines)("the CPU port on %s", (_name, make) => {
  test("an entry never written reads as zero; a written one reads back", () => {
    const { cpu } = make();
    cpu.readEntry((0x200 * PAGE_SIZE + 8) as Gpa);
    expect([cpu.lo, cpu.hi]).toEqual([0, 0]);
    cpu.zeroPage(0x200 as Gfn);
    cpu.writeEntry((0x200 * PAGE_SIZE + 8) as Gpa, 0x1234_5007, 0x8000_0001);
    cpu.readEntry((0x200 * PAGE_SIZE + 8) as Gpa);
    expect([cpu.lo, cpu.hi]).toEqual([0x1234_5007, 0x8000_0001]);
    cpu.copyPage(0x201 as Gfn, 0x200 as Gfn);
    cpu.readEntry((0x201 * PAGE_SIZE + 8) as Gpa);
    expect([cpu.lo, cpu.hi]).toEqual([0x1234_5007, 0x8000_0001]);
    cpu.zeroPage(0x200 as Gfn);
    cpu.readEntry((0x200 * PAGE_SIZE + 8) as Gpa);
    expect([cpu.lo, cpu.hi]).toEqual([0, 0]);
  });

  test("after MOV to CR3 an access goes through the tables the kernel wrote; an unmapped one is the kernel's #PF", () => {
    const { cpu, frameOf } = make();
    const { root } = mapPage(cpu, 0x300);
    cpu.loadCr3(root as Gfn, 1, false);
    expect(cpu.pcide).toBe(true);
    expect(cpu.access((GVA + 0x18) as Gva, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
    expect(cpu.mmu.hpa).toBe(frameOf(0x300) * PAGE_SIZE + 0x18);
    expect(cpu.access((GVA + PAGE_SIZE) as Gva, ACC_USER | ACC_WRITE)).toBe(XLATE_GUEST_PF);
    expect(cpu.mmu.errorCode & (PFERR_PRESENT | PFERR_WRITE | PFERR_USER)).toBe(PFERR_WRITE | PFERR_USER);
  });

  test.each(["invlpg", "flushTlb"] as const)("a cleared PTE faults once %s dropped the cached translation", (how) => {
    const { cpu } = make();
    const { root, pte } = mapPage(cpu, 0x300);
    cpu.loadCr3(root as Gfn, 1, false);
    expect(cpu.access(GVA as Gva, ACC_USER)).toBe(XLATE_OK);
    cpu.writeEntry(pte as Gpa, 0, 0);
    if (how === "invlpg") cpu.invlpg(GVA as Gva);
    else cpu.flushTlb();
    expect(cpu.access(GVA as Gva, ACC_USER)).toBe(XLATE_GUEST_PF);
    expect(cpu.mmu.errorCode & PFERR_PRESENT).toBe(0);
    cpu.ucall();
  });
});
