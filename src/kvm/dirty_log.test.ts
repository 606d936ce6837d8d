// SPDX-License-Identifier: MIT
// KVM dirty logging on a VM whose guest kernel writes guest-physical pages through the vCPU:
// write protection when logging starts, one fault and one dirty bit per first write per round,
// KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG returning exactly the written pages, the dirty ring,
// eager and on-write huge-page splits and the recovery when logging stops.
import { describe, expect, test } from "vitest";
import { type Gfn, type Gpa, PAGE_SIZE } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { ACC_USER, ACC_WRITE, XLATE_OK } from "../hw/mmu.js";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";
import { HostKernel } from "../host/kernel.js";
import { type Backing, QemuVm } from "../qemu/vm.js";
import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  KvmIoctlError,
  dirtyBitmapWords,
  kvmClearDirtyLog,
  kvmDirtyRingHarvest,
  kvmEnableDirtyRing,
  kvmEnableManualDirtyLogProtect,
  kvmGetDirtyLog,
  kvmResetDirtyRings,
  kvmSetMemslotFlags,
} from "./dirty_log.js";
import type { Kvm, MmuMode, Vcpu } from "./kvm.js";
import type { ShadowMmu } from "./shadow_mmu.js";
import type { TdpMmu } from "./tdp_mmu.js";

const MiB = 2 ** 20;

function setup(mmu: MmuMode, o: { backing?: Backing; ram?: number; hostRam?: number } = {}) {
  const bus = new EventBus();
  const host = new HostKernel({ ram: o.hostRam ?? 256 * MiB, swap: 0, thp: "never" }, bus);
  const qemu = new QemuVm(
    host,
    { name: "vm", ram: o.ram ?? 64 * MiB, vcpus: 1, mmu, backing: o.backing ?? "4k", prealloc: false, levels: 4 },
    bus,
  );
  const kvm = qemu.kvm;
  const v = kvm.vcpus[0]!;
  const write = (gfn: number) => expect(v.physAccess(gfn * PAGE_SIZE, ACC_WRITE)).toBe(XLATE_OK);
  const s = () => kvm.statsWithVcpus();
  return { kvm, v, write, s, bus };
}

/** The gfns whose bit is set in a slot-relative bitmap of slot 0 (base gfn 0). */
function bits(bm: Uint32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bm.length * 32; i++) if ((bm[i >>> 5]! >>> (i & 31)) & 1) out.push(i);
  return out;
}

function writableLeaves(kvm: Kvm): number {
  const tdp = kvm.mmu as TdpMmu;
  let n = 0;
  tdp.forEachLeaf((_g, _l, _p, lo) => {
    if (lo & tdp.masks.writable) n++;
  });
  return n;
}

function delta(a: Record<string, number>, b: Record<string, number>, keys: string[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

/** The faults, and the exits: those plus irq_exits (the IPI of the flush that re-protected pages, taken at the next entry). */
const FAULTS = ["pf_taken", "pf_fast", "pf_fixed", "exits", "irq_exits"];

describe.each(["ept", "npt"] as const)("dirty logging, write protection, %s", (mode) => {
  test("start write-protects every leaf once; each first write per round is one fast fault and one dirty bit; KVM_GET_DIRTY_LOG returns exactly those", () => {
    const { kvm, write, s } = setup(mode);
    for (let g = 0x100; g < 0x100 + 100; g++) write(g);
    expect(writableLeaves(kvm)).toBe(100);
    const f0 = s();
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    expect(writableLeaves(kvm)).toBe(0);
    expect(delta(f0, s(), ["remote_tlb_flush_requests", "pages_4k"])).toEqual({ remote_tlb_flush_requests: 1, pages_4k: 0 });
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    expect(delta(f0, s(), ["remote_tlb_flush_requests"])).toEqual({ remote_tlb_flush_requests: 1 });

    const bm = new Uint32Array(dirtyBitmapWords(kvm.memslots.slots[0]!.npages));
    for (const round of [
      [0x100, 0x105, 0x163],
      [0x101, 0x105, 0x120, 0x121],
    ]) {
      const a = s();
      for (const g of round) {
        write(g);
        write(g); // the second write to the page in the round takes no fault
      }
      expect(delta(a, s(), FAULTS)).toEqual({
        pf_taken: round.length,
        pf_fast: round.length,
        pf_fixed: round.length,
        exits: round.length + 1,
        irq_exits: 1,
      });
      expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(round.length);
      expect(bits(bm)).toEqual(round);
      expect(writableLeaves(kvm)).toBe(0);
    }
    // A page first mapped while logging: one slow fault (not fast), one dirty bit.
    const a = s();
    write(0x2000);
    expect(delta(a, s(), FAULTS)).toEqual({ pf_taken: 1, pf_fast: 0, pf_fixed: 1, exits: 2, irq_exits: 1 });
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(1);
    expect(bits(bm)).toEqual([0x2000]);
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(0);
  });

  test("manual protect with initially-set: all pages dirty, nothing write-protected; KVM_CLEAR_DIRTY_LOG in 64-page chunks re-protects exactly the cleared pages", () => {
    const { kvm, write, s } = setup(mode);
    for (let g = 0; g < 200; g++) write(g);
    kvmEnableManualDirtyLogProtect(kvm, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    const npages = kvm.memslots.slots[0]!.npages;
    const bm = new Uint32Array(dirtyBitmapWords(npages));
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(npages);
    expect(writableLeaves(kvm)).toBe(200);
    // Clear pages 64..127 (the first chunk stays dirty and writable).
    const all = new Uint32Array(2).fill(0xffffffff);
    expect(kvmClearDirtyLog(kvm, 0, 64, 64, all)).toBe(64);
    expect(kvmClearDirtyLog(kvm, 0, 64, 64, all)).toBe(0);
    expect(writableLeaves(kvm)).toBe(200 - 64);
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(npages - 64);
    const a = s();
    write(70);
    write(10);
    expect(delta(a, s(), FAULTS)).toEqual({ pf_taken: 1, pf_fast: 1, pf_fixed: 1, exits: 2, irq_exits: 1 });
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(npages - 63);
    expect(() => kvmClearDirtyLog(kvm, 0, 3, 64, all)).toThrow(/first_page 3 is not a multiple of 64/);
    expect(() => kvmClearDirtyLog(kvm, 0, 0, 100, new Uint32Array(4))).toThrow(/multiple of 64 unless it ends the slot/);
  });

  test("the dirty ring: each first write pushes one gfn; harvest returns them in order; reset re-protects; soft-full exits to the VMM", () => {
    const { kvm, v, write, s } = setup(mode);
    for (let g = 0; g < 300; g++) write(g);
    expect(() => kvmEnableDirtyRing(kvm, 100)).toThrow(KvmIoctlError);
    kvmEnableDirtyRing(kvm, 128);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    expect(() => kvmGetDirtyLog(kvm, 0, new Uint32Array(dirtyBitmapWords(kvm.memslots.slots[0]!.npages)))).toThrow(/-ENXIO/);
    const out = new Float64Array(256);
    for (const g of [7, 3, 7, 250]) write(g);
    expect(kvmDirtyRingHarvest(v, out)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([7, 3, 250]);
    expect(kvmDirtyRingHarvest(v, out)).toBe(0);
    write(7); // still writable until the reset
    expect(kvmResetDirtyRings(kvm)).toBe(3);
    const a = s();
    write(7);
    expect(delta(a, s(), ["pf_fast"])).toEqual({ pf_fast: 1 });
    // Soft limit 128 - 64: the 64th entry makes the next entry exit to the VMM, which reaps.
    const reaped: number[] = [];
    kvm.dirtyRingFullHandler = (vc) => {
      const n = kvmDirtyRingHarvest(vc, out);
      reaped.push(n);
      kvmResetDirtyRings(kvm);
    };
    for (let g = 100; g < 200; g++) write(g);
    expect(reaped).toEqual([64]);
    expect(s().dirty_ring_full_exits).toBe(1);
  });
});

describe("huge pages under dirty logging (TDP MMU, 1 GiB hugetlb)", () => {
  const big = { backing: "hugetlb-1g" as const, ram: 2 ** 30, hostRam: 2 ** 31 };

  test("eager split turns every 1 GiB leaf into 4 KiB leaves (513 tables), later writes take no split; stopping recovers the 1 GiB leaf", () => {
    const { kvm, write, s, bus } = setup("ept", big);
    write(0);
    const before = s();
    expect([before.pages_1g, before.pages_2m, before.pages_4k]).toEqual([1, 0, 0]);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    const after = s();
    expect([after.pages_1g, after.pages_2m, after.pages_4k]).toEqual([0, 0, 512 * 512]);
    expect(after.mmu_table_pages - before.mmu_table_pages).toBe(1 + 512);
    expect(writableLeaves(kvm)).toBe(0);
    let splits = 0;
    bus.listen((e) => {
      if (e.kind === "kvm.huge_split") splits++;
    });
    const a = s();
    for (const g of [1, 513, 100000]) write(g);
    expect(delta(a, s(), ["pf_fast", "pf_taken", "pages_4k", "mmu_table_pages"])).toEqual({
      pf_fast: 3,
      pf_taken: 3,
      pages_4k: 0,
      mmu_table_pages: 0,
    });
    expect(splits).toBe(0);
    const bm = new Uint32Array(dirtyBitmapWords(kvm.memslots.slots[0]!.npages));
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(3);
    expect(bits(bm)).toEqual([1, 513, 100000]);
    kvmSetMemslotFlags(kvm, 0, 0);
    const end = s();
    expect([end.pages_1g, end.pages_2m, end.pages_4k, end.mmu_table_pages]).toEqual([1, 0, 0, before.mmu_table_pages]);
  });

  test("without eager split the first write to each huge page splits it and maps 4 KiB; the other 4 KiB pages stay write-protected", () => {
    const { kvm, write, s } = setup("ept", big);
    kvm.eagerPageSplit = false;
    write(0);
    const t0 = s().mmu_table_pages;
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    expect([s().pages_1g, s().pages_2m, s().pages_4k]).toEqual([1, 0, 0]);
    const a = s();
    write(5); // 1 GiB leaf -> 512 x 2 MiB, the first 2 MiB -> 512 x 4 KiB
    expect(delta(a, s(), ["pf_taken", "pf_fast", "pages_1g", "pages_2m", "pages_4k"])).toEqual({
      pf_taken: 1,
      pf_fast: 0,
      pages_1g: -1,
      pages_2m: 511,
      pages_4k: 512,
    });
    expect(s().mmu_table_pages - t0).toBe(2);
    write(600); // another 2 MiB leaf: split on its first write
    write(6); // a 4 KiB leaf split earlier, write-protected: the fast path
    expect([s().pages_1g, s().pages_2m, s().pages_4k]).toEqual([0, 510, 1024]);
    expect(s().pf_fast - a.pf_fast).toBe(1);
    expect(writableLeaves(kvm)).toBe(3);
    const bm = new Uint32Array(dirtyBitmapWords(kvm.memslots.slots[0]!.npages));
    expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(3);
    expect(bits(bm)).toEqual([5, 6, 600]);
  });
});

/** A guest of a few lines under shadow paging: 4-level tables in guest RAM mapping n user pages from GVA (A and D set). */
function shadowGuest(v: Vcpu, n: number) {
  const GVA = 0x7f00_0000_0000;
  const FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
  let next = 0x100;
  const frame = () => {
    const g = next++;
    v.zeroPage(g as Gfn);
    return g;
  };
  const pgd = frame();
  const data: number[] = [];
  for (let i = 0; i < n; i++) {
    const gva = GVA + i * PAGE_SIZE;
    let table = pgd;
    for (let l = 4; l > 1; l--) {
      const gpa = table * PAGE_SIZE + (Math.floor(gva / 2 ** (12 + 9 * (l - 1))) & 511) * 8;
      v.readEntry(gpa as Gpa);
      if (v.lo & PTE_P) {
        table = entryPfn(v.lo, v.hi);
        continue;
      }
      const t = frame();
      v.writeEntry(gpa as Gpa, frameLo(t, FLAGS), frameHi(t));
      table = t;
    }
    const d = 0x1000 + i;
    data.push(d);
    v.writeEntry((table * PAGE_SIZE + (Math.floor(gva / PAGE_SIZE) & 511) * 8) as Gpa, frameLo(d, FLAGS), frameHi(d));
  }
  v.archMmu.setCr3(pgd, 1, false);
  return { write: (i: number) => expect(v.access(GVA + i * PAGE_SIZE, ACC_USER | ACC_WRITE)).toBe(XLATE_OK), data };
}

describe("dirty logging, write protection, shadow paging (rmaps)", () => {
  test("start write-protects the data leaves; each first write per round is one #PF exit fixed by KVM and one dirty bit; stop leaves the log freed", () => {
    const { kvm, v, s } = setup("shadow");
    v.mmu.pcide = true;
    const g = shadowGuest(v, 16);
    for (let i = 0; i < 16; i++) g.write(i);
    const leaves = () => {
      let w = 0;
      (kvm.mmu as ShadowMmu).forEachLeaf((gfn, _l, _p, lo) => {
        if (g.data.includes(gfn) && lo & PTE_RW) w++;
      });
      return w;
    };
    expect(leaves()).toBe(16);
    kvmSetMemslotFlags(kvm, 0, KVM_MEM_LOG_DIRTY_PAGES);
    expect(leaves()).toBe(0);
    const bm = new Uint32Array(dirtyBitmapWords(kvm.memslots.slots[0]!.npages));
    for (const round of [
      [0, 3, 9],
      [3, 4, 15, 1],
    ]) {
      const a = s();
      for (const i of round) {
        g.write(i);
        g.write(i);
      }
      expect(delta(a, s(), ["pf_taken", "pf_fixed", "pf_fast", "pf_emulate"])).toEqual({
        pf_taken: round.length,
        pf_fixed: round.length,
        pf_fast: 0,
        pf_emulate: 0,
      });
      expect(kvmGetDirtyLog(kvm, 0, bm)).toBe(round.length);
      expect(bits(bm)).toEqual(round.map((i) => g.data[i]!).sort((x, y) => x - y));
      expect(leaves()).toBe(0);
    }
    kvmSetMemslotFlags(kvm, 0, 0);
    expect(kvm.memslots.slots[0]!.dirtyBitmap).toBeNull();
    expect(() => kvmGetDirtyLog(kvm, 0, bm)).toThrow(/does not log dirty pages/);
  });
});
