// SPDX-License-Identifier: MIT
// The shadow MMU on one vCPU, driven by a few lines of guest kernel that build 4-level tables
// in guest RAM through the vCPU (as the guest kernel's port does): KVM's guest walk and its
// counts, shadow pages per guest table, write protection, unsync and resync, emulated writes
// and flooding, the prev_roots cache, recycling, the notifier, and the counts Linux defines.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { type Gfn, type Gpa, PAGE_SIZE, tableIndex } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import {
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_RW,
  PTE_US,
  entryPfn,
  frameHi,
  frameLo,
} from "../hw/x86_pte.js";
import { HostKernel } from "../host/kernel.js";
import { QemuVm } from "../qemu/vm.js";
import type { Kvm } from "./kvm.js";
import {
  ROLE_ACCESS_MASK,
  ROLE_DIRECT,
  ROLE_EFER_NX,
  ROLE_LEVEL_MASK,
  childRole,
  roleAccess,
  roleLevel,
  shadowRootRole,
  hash64,
} from "./shadow_page.js";
import { KVM_EVENTS } from "./kvm_events.js";

import type { Vcpu } from "./kvm.js";
import { RET_PF_FAILED } from "./mmu.js";
import { ShadowMmu } from "./shadow_mmu.js";
import type { ShadowVcpuMmu } from "./shadow_vcpu.js";
import { ShadowPagingVcpuMmu } from "./vcpu_mmu.js";

const MiB = 2 ** 20;
/** _PAGE_TABLE and a user read-write leaf with A and D set, as Linux writes them. */
const TABLE = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
const LEAF = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
const GVA = 0x7f00_0000_0000;
const GB = 2 ** 30;

/** A guest kernel of a few lines: frames from a bump allocator, tables written through the vCPU's CPU port. */
class MiniGuest {
  next = 0x100;
  constructor(
    readonly kvm: Kvm,
    readonly v: Vcpu,
  ) {}

  /** A frame cleared with clear_page() through the vCPU. */
  allocFrame(): number {
    const gfn = this.next++;
    this.clear(gfn);
    return gfn;
  }

  clear(gfn: number): void {
    this.v.zeroPage(gfn as Gfn);
  }

  write(gpa: number, lo: number, hi = 0): void {
    this.v.writeEntry(gpa as Gpa, lo, hi);
  }

  read(gpa: number): [number, number] {
    this.v.readEntry(gpa as Gpa);
    return [this.v.lo, this.v.hi];
  }

  /** The gpa of gva's entry at `level`, allocating the tables above it. */
  entryGpa(pgd: number, gva: number, level = 1): number {
    let table = pgd;
    for (let l = 4; l > level; l--) {
      const gpa = table * PAGE_SIZE + tableIndex(gva, l) * 8;
      const [lo, hi] = this.read(gpa);
      if (lo & PTE_P) {
        table = entryPfn(lo, hi);
        continue;
      }
      const t = this.allocFrame();
      this.write(gpa, frameLo(t, TABLE), frameHi(t));
      table = t;
    }
    return table * PAGE_SIZE + tableIndex(gva, level) * 8;
  }

  /** The guest table frame at `level` on gva's path (4: the PGD). */
  tableGfn(pgd: number, gva: number, level: number): number {
    return Math.floor(this.entryGpa(pgd, gva, level) / PAGE_SIZE);
  }

  map(pgd: number, gva: number, gfn: number, flags = LEAF, hi = 0): void {
    this.write(this.entryGpa(pgd, gva), frameLo(gfn, flags), frameHi(gfn, hi));
  }
}

function setup(o: { hostRam?: number; ram?: number } = {}) {
  const bus = new EventBus();
  const host = new HostKernel({ ram: o.hostRam ?? 256 * MiB, swap: 0, thp: "never" }, bus);
  const qemu = new QemuVm(
    host,
    { name: "vm", ram: o.ram ?? 64 * MiB, vcpus: 1, mmu: "shadow", backing: "4k", prealloc: false, levels: 4 },
    bus,
  );
  const kvm = qemu.kvm;
  const v = kvm.vcpus[0]!;
  v.mmu.pcide = true;
  return { bus, host, qemu, kvm, v, g: new MiniGuest(kvm, v), shadow: shadowMmu(kvm), s: () => kvm.statsWithVcpus() };
}

function shadowMmu(kvm: Kvm): ShadowMmu {
  if (!(kvm.mmu instanceof ShadowMmu)) throw new Error(`${kvm.name} does not run the shadow MMU`);
  return kvm.mmu;
}

function shadowVcpu(v: Vcpu): ShadowVcpuMmu {
  if (!(v.archMmu instanceof ShadowPagingVcpuMmu)) throw new Error(`vCPU ${v.id} does not run shadow paging`);
  return v.archMmu.shadow;
}

function diff(a: Record<string, number>, b: Record<string, number>, keys: string[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

/** Host frame behind a guest frame (for comparing where an access landed). */
function hostFrameOf(kvm: Kvm, gfn: number): number {
  return shadowMmu(kvm).gmem.hostFrame(gfn, false, true);
}

describe("formats", () => {
  test("hash_64(gfn, 12) agrees with the 64-bit multiplication by GOLDEN_RATIO_64", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 45n) - 1n }), (g) => {
        const want = Number(((g * 0x61c8864680b583ebn) & ((1n << 64n) - 1n)) >> 52n);
        expect(hash64(Number(g), 12)).toBe(want);
      }),
      { numRuns: 200 },
    );
  });

  test("roles: the root role is the guest's level with all access and EFER.NX; a child is one level down with the walk's access", () => {
    const root = shadowRootRole(4);
    expect(roleLevel(root)).toBe(4);
    expect(roleAccess(root)).toBe(7);
    expect(root & ROLE_EFER_NX).not.toBe(0);
    const c = childRole(root, false, 5);
    expect([roleLevel(c), roleAccess(c), c & ROLE_DIRECT, c & ROLE_EFER_NX]).toEqual([3, 5, 0, ROLE_EFER_NX]);
    const d = childRole(c, true, 3);
    expect([roleLevel(d), roleAccess(d), d & ROLE_DIRECT]).toEqual([2, 3, ROLE_DIRECT]);
    expect(ROLE_LEVEL_MASK & ROLE_ACCESS_MASK).toBe(0);
    expect((ROLE_LEVEL_MASK | ROLE_ACCESS_MASK) & ROLE_DIRECT).toBe(0);
  });
});

describe("the first fault and the walks (FNAME(page_fault), walk_addr, fetch)", () => {
  test("a cold fault: one #PF exit, 4 guest reads + 4 gpte re-checks, a root and 3 shadow pages; then the hardware walks 4 shadow entries", () => {
    const { kvm, v, g, shadow, s } = setup();
    const pgd = g.allocFrame();
    const data = g.allocFrame();
    g.map(pgd, GVA, data);
    v.archMmu.setCr3(pgd, 1, false);
    expect(s().mmu_cache_miss).toBe(1); // the root, built by kvm_mmu_load() before entry
    const a = s();
    const hw0 = v.mmu.stats.guestTableReads;
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    const d = diff(a, s(), ["exits", "pf_taken", "pf_fixed", "pf_guest", "mmu_cache_miss", "gpte_reads", "gpte_writes", "pages_4k"]);
    expect(d).toEqual({ exits: 1, pf_taken: 1, pf_fixed: 1, pf_guest: 0, mmu_cache_miss: 3, gpte_reads: 8, gpte_writes: 0, pages_4k: 1 });
    expect(v.stats.exitReasons.EXCEPTION_NMI).toBe(1);
    expect(shadow.nUsedMmuPages).toBe(4);
    expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, data));
    // The hardware's first walk stopped at the empty root entry; the retry read 4 entries.
    expect(v.mmu.stats.guestTableReads - hw0).toBe(1 + 4);
    // Cold again (TLB and paging-structure caches flushed): 4 reads, no exit.
    v.mmu.invvpid(2, 1);
    const hw1 = v.mmu.stats.guestTableReads;
    const e1 = s().exits;
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(v.mmu.stats.guestTableReads - hw1).toBe(4);
    expect(s().exits).toBe(e1);
  });

  test("every guest table on the walk is write-protected: the upper ones write-tracked, the leaf table under a sync shadow page", () => {
    const { v, g, shadow } = setup();
    const pgd = g.allocFrame();
    g.map(pgd, GVA, g.allocFrame());
    v.archMmu.setCr3(pgd, 1, false);
    v.access(GVA, ACC_USER | ACC_WRITE);
    const [pud, pmd, pt] = [3, 2, 1].map((l) => g.tableGfn(pgd, GVA, l));
    for (const t of [pgd, pud!, pmd!]) expect(shadow.track.isWriteTracked(t)).toBe(true);
    expect(shadow.track.isWriteTracked(pt!)).toBe(false);
    expect(shadow.indirectPagesOf(pt!).map((sp) => [sp.level, sp.unsync])).toEqual([[1, false]]);
    expect(shadow.indirectShadowPages).toBe(4);
    for (const t of [pgd, pud!, pmd!, pt!]) expect(shadow.dmapRo.has(t)).toBe(true);
    // No huge page may cover a shadowed frame.
    expect(shadow.track.lpageDisallowed(pt!, 2)).toBe(true);
  });

  test("KVM sets the guest's A and D bits with a cmpxchg, and maps a clean gpte read-only until the first write", () => {
    const { kvm, v, g, s } = setup();
    const pgd = g.allocFrame();
    const data = g.allocFrame();
    g.map(pgd, GVA, data, PTE_P | PTE_RW | PTE_US); // A and D clear
    v.archMmu.setCr3(pgd, 1, false);
    const a = s();
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(diff(a, s(), ["gpte_writes", "pf_fixed"])).toEqual({ gpte_writes: 1, pf_fixed: 1 });
    const pte = g.entryGpa(pgd, GVA);
    expect(g.read(pte)[0] & (PTE_A | PTE_D)).toBe(PTE_A);
    // protect_clean_gpte(): the spte is read-only, so the write faults and KVM sets D.
    const b = s();
    expect(v.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
    expect(diff(b, s(), ["exits", "pf_fixed", "gpte_writes", "pf_guest"])).toEqual({ exits: 1, pf_fixed: 1, gpte_writes: 1, pf_guest: 0 });
    expect(g.read(pte)[0] & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, data));
  });

  test("the guest's own faults are reflected with the error code its tables explain (pf_guest)", () => {
    const { v, g, s } = setup();
    const pgd = g.allocFrame();
    g.map(pgd, GVA, g.allocFrame(), PTE_P | PTE_RW | PTE_A | PTE_D); // supervisor only
    g.map(pgd, GVA + PAGE_SIZE, g.allocFrame(), PTE_P | PTE_US | PTE_A); // read-only
    g.map(pgd, GVA + 2 * PAGE_SIZE, 0x300, LEAF, 1 << 14); // frame bit 46: reserved at MAXPHYADDR 46
    v.archMmu.setCr3(pgd, 1, false);
    const cases: [number, number, number][] = [
      [GVA, ACC_USER, PFERR_PRESENT | PFERR_USER],
      [GVA + PAGE_SIZE, ACC_USER | ACC_WRITE, PFERR_PRESENT | PFERR_WRITE | PFERR_USER],
      [GVA + 2 * PAGE_SIZE, ACC_USER, PFERR_RSVD | PFERR_PRESENT | PFERR_USER],
      [GVA + 3 * PAGE_SIZE, ACC_USER | ACC_WRITE, PFERR_WRITE | PFERR_USER],
    ];
    for (const [gva, acc, ec] of cases) {
      expect(v.access(gva, acc)).toBe(XLATE_GUEST_PF);
      expect(v.mmu.errorCode).toBe(ec);
    }
    expect(s().pf_guest).toBe(4);
    // The read-only page still reads.
    expect(v.access(GVA + PAGE_SIZE, ACC_USER)).toBe(XLATE_OK);
  });

  test("KVM_PRE_FAULT_MEMORY faults by gpa, which shadow paging cannot: the attempt fails and nothing is counted", () => {
    const { v, s } = setup();
    const a = s();
    expect(v.faultOnce(0x1000, false)).toBe(RET_PF_FAILED);
    expect(v.fault.reason).toMatch(/not supported under shadow paging/);
    expect(diff(a, s(), ["pf_taken", "exits"])).toEqual({ pf_taken: 0, exits: 0 });
  });
});

describe("guest writes to its own tables (write protection, unsync, emulation, flooding)", () => {
  function mapped() {
    const t = setup();
    const pgd = t.g.allocFrame();
    t.g.map(pgd, GVA, t.g.allocFrame());
    t.v.archMmu.setCr3(pgd, 1, false);
    t.v.access(GVA, ACC_USER | ACC_WRITE);
    return { ...t, pgd };
  }

  test("a write to a shadowed leaf table faults once and unsyncs it; CR3 reload resyncs and write-protects it again", () => {
    const { v, g, shadow, s, pgd } = mapped();
    const pt = g.tableGfn(pgd, GVA, 1);
    const a = s();
    g.map(pgd, GVA + PAGE_SIZE, g.allocFrame());
    expect(diff(a, s(), ["exits", "pf_taken", "pf_fixed", "pf_emulate", "mmu_pte_write", "mmu_unsync"])).toEqual({
      exits: 1,
      pf_taken: 1,
      pf_fixed: 1,
      pf_emulate: 0,
      mmu_pte_write: 0,
      mmu_unsync: 1,
    });
    expect(shadow.dmapRo.has(pt)).toBe(false);
    // Unsync: further writes go straight to guest RAM.
    const b = s();
    g.map(pgd, GVA + 2 * PAGE_SIZE, g.allocFrame());
    expect(s().exits).toBe(b.exits);
    // The guest uses the new mappings: shadow faults install them from the (unsync) table.
    expect(v.access(GVA + PAGE_SIZE, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
    // A flushing CR3 write: CR_ACCESS exit, KVM_REQ_MMU_SYNC + TLB_FLUSH_CURRENT before entry.
    const c = s();
    v.archMmu.flushTlb();
    expect(diff(c, s(), ["exits", "mmu_unsync", "tlb_flush"])).toEqual({ exits: 1, mmu_unsync: -1, tlb_flush: 1 });
    expect(v.stats.exitReasons.CR_ACCESS).toBe(2);
    expect(shadow.dmapRo.has(pt)).toBe(true);
    expect(shadow.indirectPagesOf(pt)[0]!.unsync).toBe(false);
  });

  test("a write to an upper-level table is emulated: pf_emulate, mmu_pte_write, mmu_pde_zapped; the stale link goes", () => {
    const { v, g, s, pgd, kvm } = mapped();
    const pmd = g.tableGfn(pgd, GVA, 2);
    // Point the PMD entry somewhere else, as free_pgtables() + a new pte_alloc() would (clear, then set).
    const pmdEntry = pmd * PAGE_SIZE + tableIndex(GVA, 2) * 8;
    const a = s();
    g.write(pmdEntry, 0, 0);
    const d = diff(a, s(), ["exits", "pf_emulate", "mmu_pte_write", "mmu_pde_zapped", "remote_tlb_flush_requests"]);
    expect(d).toEqual({ exits: 1, pf_emulate: 1, mmu_pte_write: 1, mmu_pde_zapped: 0, remote_tlb_flush_requests: 1 });
    expect(g.read(pmdEntry)).toEqual([0, 0]);
    // The shadow no longer maps GVA: the next access finds the guest's not-present PMD.
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_GUEST_PF);
    const pt2 = g.allocFrame();
    const b = s();
    g.write(pmdEntry, frameLo(pt2, TABLE), frameHi(pt2));
    expect(diff(b, s(), ["pf_emulate", "mmu_pte_write", "mmu_pde_zapped"])).toEqual({ pf_emulate: 1, mmu_pte_write: 1, mmu_pde_zapped: 1 });
    const data = g.allocFrame();
    g.map(pgd, GVA, data);
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, data));
  });

  test("three emulated writes to an upper-level table nothing walked through in between: write flooding zaps its shadow page", () => {
    const { v, g, s, shadow, pgd } = mapped();
    const pmd = g.tableGfn(pgd, GVA, 2);
    const a = s();
    // Prefault-style: the guest fills PMD entries for three new 2 MiB regions and touches none.
    for (let i = 1; i <= 3; i++) g.entryGpa(pgd, GVA + i * 2 * MiB);
    const d = diff(a, s(), ["mmu_pte_write", "mmu_flooded", "mmu_shadow_zapped", "mmu_pde_zapped"]);
    expect(d).toEqual({ mmu_pte_write: 3, mmu_flooded: 1, mmu_shadow_zapped: 1, mmu_pde_zapped: 2 });
    expect(shadow.track.isWriteTracked(pmd)).toBe(false);
    expect(shadow.indirectPagesOf(pmd)).toEqual([]);
    // The next write is a plain one (nothing shadows the PMD now), and the data is still reachable.
    const b = s();
    g.entryGpa(pgd, GVA + 4 * 2 * MiB);
    expect(s().exits).toBe(b.exits + 1); // the direct-map spte was still read-only: one fault makes it writable
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
  });

  test("a fault through the table in between resets the flood count: no zap", () => {
    const { v, g, s, pgd } = mapped();
    const a = s();
    for (let i = 1; i <= 2; i++) g.map(pgd, GVA + i * 2 * MiB, g.allocFrame());
    expect(v.access(GVA + 2 * MiB, ACC_USER)).toBe(XLATE_OK); // FNAME(fetch) clears the counts on its path
    for (let i = 3; i <= 4; i++) g.map(pgd, GVA + i * 2 * MiB, g.allocFrame());
    expect(diff(a, s(), ["mmu_pte_write", "mmu_flooded"])).toEqual({ mmu_pte_write: 4, mmu_flooded: 0 });
  });

  test("a user store to a frame shadowed as an upper-level table is emulated (the guest maps its own PMD page); the third zaps it; then stores run natively", () => {
    const { v, g, s, shadow, pgd } = mapped();
    const pmd = g.tableGfn(pgd, GVA, 2);
    const alias = GVA + GB; // another PUD entry: its walk does not go through the PMD page it writes
    g.map(pgd, alias, pmd);
    const steps: Record<string, number>[] = [];
    for (let i = 0; i < 5; i++) {
      const a = s();
      expect(v.access(alias, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
      steps.push(diff(a, s(), ["exits", "pf_emulate", "pf_fixed", "mmu_pte_write", "mmu_flooded"]));
    }
    expect(steps).toEqual([
      { exits: 1, pf_emulate: 1, pf_fixed: 0, mmu_pte_write: 1, mmu_flooded: 0 }, // mapped read-only: write-tracked
      { exits: 1, pf_emulate: 1, pf_fixed: 0, mmu_pte_write: 1, mmu_flooded: 0 },
      { exits: 1, pf_emulate: 1, pf_fixed: 0, mmu_pte_write: 1, mmu_flooded: 1 }, // flooding: the PMD's shadow page goes
      { exits: 1, pf_emulate: 0, pf_fixed: 1, mmu_pte_write: 0, mmu_flooded: 0 }, // nothing shadows it now: the spte becomes writable
      { exits: 0, pf_emulate: 0, pf_fixed: 0, mmu_pte_write: 0, mmu_flooded: 0 },
    ]);
    expect(shadow.track.isWriteTracked(pmd)).toBe(false);
    expect(shadow.checkInvariants()).toEqual([]);
  });

  test("clear_page() of a frame KVM still shadows as an upper table: KVM unprotects it (zaps its shadow page) and the guest retries", () => {
    const { v, g, s, shadow, pgd } = mapped();
    const pmd = g.tableGfn(pgd, GVA, 2);
    const a = s();
    g.clear(pmd);
    expect(diff(a, s(), ["exits", "pf_emulate", "pf_fixed", "mmu_shadow_zapped", "mmu_pte_write"])).toEqual({
      exits: 2,
      pf_emulate: 1,
      pf_fixed: 1,
      mmu_shadow_zapped: 1,
      mmu_pte_write: 0,
    });
    expect(shadow.track.isWriteTracked(pmd)).toBe(false);
    // The guest's tables now say GVA is unmapped; the stale shadow path is gone.
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_GUEST_PF);
  });

  test("edit then use: clear, INVLPG, set to another frame — the access reaches the new frame, never the old", () => {
    const { kvm, v, g, s, pgd } = mapped();
    const pte = g.entryGpa(pgd, GVA);
    const old = entryPfn(...g.read(pte));
    const next = g.allocFrame();
    g.write(pte, 0, 0); // unsyncs the leaf table: the spte still maps the old frame, like a TLB entry
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, old));
    const a = s();
    v.archMmu.invlpg(GVA); // flush_tlb_page(): KVM resyncs that spte
    expect(diff(a, s(), ["exits", "invlpg", "pages_4k"])).toEqual({ exits: 1, invlpg: 1, pages_4k: -1 });
    expect(v.stats.exitReasons.INVLPG).toBe(1);
    g.write(pte, frameLo(next, LEAF), frameHi(next));
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, next));
    expect(shadowVcpu(v).gfnOf(GVA)).toBe(next);
  });
});

describe("roots (fast_pgd_switch, prev_roots) and the shadow-page limit", () => {
  test("two address spaces switched back and forth reuse their cached roots: no root is rebuilt after the first round", () => {
    const { v, g, s } = setup();
    const pgds = [g.allocFrame(), g.allocFrame()];
    for (const p of pgds) g.map(p, GVA, g.allocFrame());
    const loads: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 2; i++) {
        // The guest's switch_mm(): a cached PCID needs no flush (CR3 bit 63).
        v.archMmu.setCr3(pgds[i]!, i + 1, round > 0);
        expect(v.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
      }
      loads.push(s().mmu_root_loads!);
    }
    expect(loads).toEqual([2, 2, 2, 2]);
    expect(s().fast_pgd_switch).toBe(6);
    // 8 CR3 loads, and one #PF for each address space's first access: nothing else exits.
    expect(s().exits).toBe(8 + 2);
  });

  test("five address spaces in turn overflow the three prev_roots: a root is reloaded, found in the hash (no cache miss)", () => {
    const { v, g, s } = setup();
    const pgds = [0, 1, 2, 3, 4].map(() => g.allocFrame());
    for (const p of pgds) g.map(p, GVA, g.allocFrame());
    for (let i = 0; i < 5; i++) {
      v.archMmu.setCr3(pgds[i]!, i + 1, false);
      v.access(GVA, ACC_USER);
    }
    const a = s();
    for (let i = 0; i < 5; i++) {
      v.archMmu.setCr3(pgds[i]!, i + 1, true);
      expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    }
    const d = diff(a, s(), ["mmu_root_loads", "mmu_cache_miss", "fast_pgd_switch", "pf_taken"]);
    expect(d).toEqual({ mmu_root_loads: 5, mmu_cache_miss: 0, fast_pgd_switch: 0, pf_taken: 0 });
  });

  test("n_max_mmu_pages is 2 % of memslot pages (at least 64); over it, the oldest pages are recycled and data stays reachable", () => {
    const { kvm, v, g, s, shadow } = setup({ ram: 512 * MiB });
    expect(shadow.nMaxMmuPages).toBe(Math.floor((512 * MiB) / PAGE_SIZE / 50));
    expect(setup({ ram: 8 * MiB }).shadow.nMaxMmuPages).toBe(64);
    shadow.setNrMmuPages(40);
    const pgd = g.allocFrame();
    const frames: number[] = [];
    for (let i = 0; i < 30; i++) {
      const f = g.allocFrame();
      frames.push(f);
      g.map(pgd, GVA + i * GB, f); // a PUD, PMD and PT page per GiB
    }
    v.archMmu.setCr3(pgd, 1, false);
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < 30; i++) {
        expect(v.access(GVA + i * GB, ACC_USER)).toBe(XLATE_OK);
        expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, frames[i]!));
        expect(shadow.nUsedMmuPages).toBeLessThanOrEqual(40);
      }
    }
    expect(s().mmu_recycled).toBeGreaterThan(0);
    expect(s().mmu_shadow_zapped).toBeGreaterThanOrEqual(s().mmu_recycled!);
  });
});

describe("the mmu_notifier", () => {
  test("invalidate_range_start zaps every spte of the range (found through the rmap) and flushes; the next access faults the page back", () => {
    const { host, qemu, shadow, v, g, s } = setup();
    const pgd = g.allocFrame();
    const data = g.allocFrame();
    g.map(pgd, GVA, data);
    g.map(pgd, GVA + PAGE_SIZE, data); // the same frame at two addresses: two sptes on one rmap
    v.archMmu.setCr3(pgd, 1, false);
    v.access(GVA, ACC_USER | ACC_WRITE);
    v.access(GVA + PAGE_SIZE, ACC_USER);
    expect(shadow.rmap.sptesOf(data)).toHaveLength(2);
    const a = s();
    qemu.madvise(data * PAGE_SIZE, PAGE_SIZE, "DONTNEED");
    expect(diff(a, s(), ["pages_4k", "remote_tlb_flush_requests"])).toEqual({ pages_4k: -2, remote_tlb_flush_requests: 1 });
    expect(shadow.rmap.sptesOf(data)).toHaveLength(0);
    const b = s();
    expect(v.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(diff(b, s(), ["pf_fixed", "pf_guest"])).toEqual({ pf_fixed: 1, pf_guest: 0 });
    // MADV_DONTNEED dropped the page: a read maps the host's zero page, read-only.
    expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(host.zeroPfn);
  });

  test("aging reads and clears the sptes' accessed bits", () => {
    const { kvm, v, g } = setup();
    const pgd = g.allocFrame();
    const data = g.allocFrame();
    g.map(pgd, GVA, data);
    v.archMmu.setCr3(pgd, 1, false);
    v.access(GVA, ACC_USER);
    expect(kvm.ageGfnRange(data, data + 1, false)).toBe(true);
    expect(kvm.ageGfnRange(data, data + 1, true)).toBe(true);
    expect(kvm.ageGfnRange(data, data + 1, false)).toBe(false);
    // The hardware sets A again on its next walk.
    v.mmu.invvpid(2, 1);
    v.access(GVA, ACC_USER);
    expect(kvm.ageGfnRange(data, data + 1, false)).toBe(true);
  });
});

describe("zapping everything, the guest's full flush, and the structures' invariants", () => {
  test("kvm_mmu_zap_all() (the notifier's release): roots in use become invalid and are rebuilt at the next entry; every access still lands", () => {
    const { kvm, v, g, s, shadow } = setup();
    const pgd = g.allocFrame();
    const frames = [0, 1, 2, 3].map(() => g.allocFrame());
    for (const [i, f] of frames.entries()) g.map(pgd, GVA + i * 2 * MiB, f);
    v.archMmu.setCr3(pgd, 1, false);
    for (let i = 0; i < 4; i++) v.access(GVA + i * 2 * MiB, ACC_USER);
    const a = s();
    kvm.zapAll(false);
    expect(s().pages_4k).toBe(0);
    expect(s().mmu_shadow_zapped! - a.mmu_shadow_zapped!).toBe(7); // root, PUD, PMD, 4 PTs
    expect(shadow.nUsedMmuPages).toBe(1); // the root stays allocated while the vCPU holds it
    expect(shadow.checkInvariants()).toEqual([]);
    for (let i = 0; i < 4; i++) {
      expect(v.access(GVA + i * 2 * MiB, ACC_USER)).toBe(XLATE_OK);
      expect(Math.floor(v.mmu.hpa / PAGE_SIZE)).toBe(hostFrameOf(kvm, frames[i]!));
    }
    expect(s().mmu_root_loads! - a.mmu_root_loads!).toBe(1);
    expect(shadow.checkInvariants()).toEqual([]);
  });

  test("a guest-requested full flush (KVM_REQ_TLB_FLUSH_GUEST) syncs the current root and frees cached roots that hold unsync pages", () => {
    const { v, g, s } = setup();
    const [p1, p2] = [g.allocFrame(), g.allocFrame()];
    for (const p of [p1!, p2!]) g.map(p, GVA, g.allocFrame());
    v.archMmu.setCr3(p1!, 1, false);
    v.access(GVA, ACC_USER);
    g.map(p1!, GVA + PAGE_SIZE, g.allocFrame()); // p1's leaf table goes unsync
    v.archMmu.setCr3(p2!, 2, false);
    v.access(GVA, ACC_USER);
    g.map(p2!, GVA + PAGE_SIZE, g.allocFrame()); // and p2's
    expect(s().mmu_unsync).toBe(2);
    const a = s();
    shadowVcpu(v).flushTlbGuest();
    // One flush, the guest's own: write-protecting the resynced table again changed no spte (no
    // spte maps a guest table writable here), so rmap_write_protect() asks for no remote flush.
    expect(diff(a, s(), ["tlb_flush", "mmu_unsync", "remote_tlb_flush_requests"])).toEqual({
      tlb_flush: 1,
      mmu_unsync: -1,
      remote_tlb_flush_requests: 0,
    });
    expect(shadowVcpu(v).roots()).toHaveLength(1); // p1's root was dropped, to be synced when next loaded
    v.archMmu.setCr3(p1!, 1, true);
    expect(v.access(GVA + PAGE_SIZE, ACC_USER)).toBe(XLATE_OK);
    expect(s().mmu_unsync).toBe(0);
  });

  test("after a mixed run the rmaps, parent links and counts agree, and every event kind emitted is declared", () => {
    const { bus, v, g, shadow, qemu } = setup();
    const kinds = new Set<string>();
    bus.listen((e) => {
      if (e.kind.startsWith("kvm.")) kinds.add(e.kind);
    });
    const pgds = [0, 1, 2].map(() => g.allocFrame());
    for (let round = 0; round < 3; round++) {
      for (let p = 0; p < 3; p++) {
        v.archMmu.setCr3(pgds[p]!, p + 1, round > 0);
        for (let i = 0; i < 20; i++) {
          const gva = GVA + ((i * 7 + round) % 12) * 2 * MiB + (i % 5) * PAGE_SIZE;
          if (v.access(gva, ACC_USER | ACC_WRITE) === XLATE_GUEST_PF) {
            g.map(pgds[p]!, gva, g.allocFrame());
            expect(v.access(gva, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
          }
        }
        if (round === 1) v.archMmu.invlpg(GVA);
        expect(shadow.checkInvariants()).toEqual([]);
      }
    }
    qemu.madvise(0x100 * PAGE_SIZE, 64 * PAGE_SIZE, "DONTNEED");
    expect(shadow.checkInvariants()).toEqual([]);
    const declared = new Set(Object.keys(KVM_EVENTS));
    expect([...kinds].filter((k) => !declared.has(k))).toEqual([]);
    expect(kinds.size).toBeGreaterThan(8);
  });
});
