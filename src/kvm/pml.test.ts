// SPDX-License-Identifier: MIT
// Dirty logging with page-modification logging (EPT): starting logs clears D bits instead of
// write-protecting; each first write per round is one PML entry, no fault and one dirty bit;
// a full buffer exits (PML_FULL) every 512 entries; the harvest flushes the buffers first.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { ACC_WRITE, XLATE_OK } from "../hw/mmu.js";
import { HostKernel } from "../host/kernel.js";
import { QemuVm } from "../qemu/vm.js";
import {
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  KvmIoctlError,
  dirtyBitmapWords,
  kvmClearDirtyLog,
  kvmEnableManualDirtyLogProtect,
  kvmEnablePml,
  kvmGetDirtyLog,
  kvmSetMemslotFlags,
} from "./dirty_log.js";
import type { Kvm, MmuMode } from "./kvm.js";
import type { TdpMmu } from "./tdp_mmu.js";

const MiB = 2 ** 20;

function setup(mmu: MmuMode = "ept") {
  const bus = new EventBus();
  const host = new HostKernel({ ram: 256 * MiB, swap: 0, thp: "never" }, bus);
  const qemu = new QemuVm(host, { name: "vm", ram: 64 * MiB, vcpus: 1, mmu, backing: "4k", prealloc: false, levels: 4 }, bus);
  const kvm = qemu.kvm;
  const v = kvm.vcpus[0]!;
  const write = (gfn: number) => expect(v.physAccess(gfn * PAGE_SIZE, ACC_WRITE)).toBe(XLATE_OK);
  const s = () => ({ ...kvm.statsWithVcpus(), PML_FULL: v.stats.exitReasons.PML_FULL ?? 0, pml: v.mmu.stats.pmlEntries });
  const bm = new Uint32Array(dirtyBitmapWords(kvm.memslots.slots[0]!.npages));
  return { kvm, v, write, s, bm };
}

function bits(bm: Uint32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bm.length * 32; i++) if ((bm[i >>> 5]! >>> (i & 31)) & 1) out.push(i);
  return out;
}

/** Present leaves with W, and with D. */
function leaves(kvm: Kvm): { writable: number; dirty: number } {
  const tdp = kvm.mmu as TdpMmu;
  let writable = 0;
  let dirty = 0;
  tdp.forEachLeaf((_g, _l, _p, lo) => {
    if (lo & tdp.masks.writable) writable++;
    if (lo & tdp.masks.dirty) dirty++;
  });
  return { writable, dirty };
}

function delta(a: Record<string, number>, b: Record<string, number>, keys: string[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

const KEYS = ["pf_taken", "pf_fast", "pf_fixed", "exits", "irq_exits", "PML_FULL", "pml"];

describe("dirty logging with PML", () => {
  test("start clears D and write-protects nothing; each first write per round is one PML entry, no fault, one dirty bit; get returns exactly those", () => {
    const { kvm, v, write, s, bm } = setup();
    kvmEnablePml(kvm);
    for (let g = 0x100; g < 0x100 + 100; g++) write(g);
    expect(leaves(kvm)).toEqual({ writable: 100, dirty: 100 });
    expect(v.mmu.pmlOn).toBe(false);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    expect(v.mmu.pmlOn).toBe(true);
    expect(leaves(kvm)).toEqual({ writable: 100, dirty: 0 });
    for (const round of [
      [0x100, 0x105, 0x163],
      [0x101, 0x105, 0x120, 0x121],
    ]) {
      const a = s();
      for (const g of round) {
        write(g);
        write(g); // the D bit is set now: no second entry
      }
      // The one exit is the IPI of the flush that followed the start (or the previous get).
      expect(delta(a, s(), KEYS)).toEqual({ pf_taken: 0, pf_fast: 0, pf_fixed: 0, exits: 1, irq_exits: 1, PML_FULL: 0, pml: round.length });
      expect(v.mmu.pmlIndex).toBe(511 - round.length);
      expect(bits(kvm.memslots.slots[0]!.dirtyBitmap!)).toEqual([]); // still in the vCPU's buffer
      expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(round.length);
      expect(bits(bm)).toEqual(round);
      expect(v.mmu.pmlIndex).toBe(511);
      expect(leaves(kvm)).toEqual({ writable: 100, dirty: 0 });
    }
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(0);
  });

  test("1,500 pages dirtied in a round: exactly 2 PML-full exits of 512 entries each, the other 476 flushed by the harvest", () => {
    const { kvm, v, write, s, bm } = setup();
    kvmEnablePml(kvm);
    for (let g = 0; g < 1500; g++) write(0x1000 + g);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    const a = s();
    for (let g = 0; g < 1500; g++) write(0x1000 + g);
    expect(delta(a, s(), KEYS)).toEqual({ pf_taken: 0, pf_fast: 0, pf_fixed: 0, exits: 3, irq_exits: 1, PML_FULL: 2, pml: 1500 });
    expect(bits(kvm.memslots.slots[0]!.dirtyBitmap!).length).toBe(1024);
    expect(v.mmu.pmlIndex).toBe(511 - 476);
    const b = s();
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(1500);
    // kvm_arch_sync_dirty_log()'s kick: one exit, which flushed the 476.
    expect(delta(b, s(), ["exits", "irq_exits"])).toEqual({ exits: 1, irq_exits: 1 });
    expect(bits(bm)).toEqual(Array.from({ length: 1500 }, (_, i) => 0x1000 + i));
  });

  test("a page first mapped while logging: one slow fault that marks it dirty (make_spte), no PML entry", () => {
    const { kvm, write, s, bm } = setup();
    kvmEnablePml(kvm);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    const a = s();
    write(0x2000);
    write(0x2000);
    // The vCPU never ran before the start: its flush sent no IPI.
    expect(delta(a, s(), KEYS)).toEqual({ pf_taken: 1, pf_fast: 0, pf_fixed: 1, exits: 1, irq_exits: 0, PML_FULL: 0, pml: 0 });
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(1);
    expect(bits(bm)).toEqual([0x2000]);
  });

  test("manual protect: get leaves D set (no new entries), KVM_CLEAR_DIRTY_LOG re-arms exactly the cleared pages by clearing D", () => {
    const { kvm, write, s, bm } = setup();
    kvmEnablePml(kvm);
    kvmEnableManualDirtyLogProtect(kvm, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
    for (let g = 0; g < 128; g++) write(g);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    for (let g = 0; g < 128; g += 2) write(g);
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(64);
    expect(leaves(kvm).dirty).toBe(64);
    let a = s();
    for (let g = 0; g < 128; g += 2) write(g);
    expect(delta(a, s(), ["pml"])).toEqual({ pml: 0 });
    // Clear the first 64 pages only: their 32 written pages lose D.
    const clear = new Uint32Array(2).fill(0xffffffff);
    expect(kvmClearDirtyLog(kvm, 0, 0, 64, clear)).toBe(32);
    expect(leaves(kvm).dirty).toBe(64 - 32);
    // Every page but the 32 written ones KVM did not clear: the 64 odd pages and the 32 cleared.
    a = s();
    for (let g = 0; g < 128; g++) write(g);
    expect(delta(a, s(), ["pml", "pf_taken"])).toEqual({ pml: 96, pf_taken: 0 });
  });

  test("PML needs EPT with A/D bits", () => {
    expect(() => kvmEnablePml(setup("npt").kvm)).toThrow(KvmIoctlError);
    expect(() => kvmEnablePml(setup("shadow").kvm)).toThrow(/PML needs EPT/);
  });
});
