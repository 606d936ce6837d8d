// SPDX-License-Identifier: MIT
// KVM's software walk of the guest's page tables (arch/x86/kvm/mmu/paging_tmpl.h,
// FNAME(walk_addr_generic) and FNAME(update_accessed_dirty_bits)), and the guest memory it
// reads and writes: every guest entry is found through the memslots at a host-virtual
// address and read there (__get_user), faulting the host page in if needed; A/D bits go back
// with one cmpxchg on guest memory per entry that changes.
//
// Under shadow paging this walk replaces the hardware's: the hardware walks KVM's shadow
// tables, and KVM walks the guest's to know what to shadow. Each read and write is counted
// on the vCPU handling the exit (gpte_reads, gpte_writes).
//
// simplified: 4- and 5-level long mode only (no PAE PDPTRs, no 32-bit tables), no protection keys, SMAP ignores EFLAGS.AC.
// simplified: kvm_translate_gpa() is the identity (no nested guest), and only one agent runs, so a cmpxchg never loses a race.

import { LEVEL_SIZE, PAGE_SIZE } from "../hw/addr.js";
import type { PhysMem } from "../hw/phys_mem.js";
import {
  PFERR_FETCH,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_A,
  PTE_D,
  PTE_HI_NX,
  PTE_P,
  PTE_PAT_HUGE,
  PTE_PS,
  entryPfn,
  rsvdHiMask,
} from "../hw/x86_pte.js";
import { isPermissionFault, isRsvdGpte, isX86Leaf, pfErrorCode } from "../hw/x86_rules.js";
import type { HostMmOps } from "./kvm.js";
import { type Memslot, type Memslots, gfnToHva } from "./memslot.js";
import { ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK } from "./shadow_page.js";

/** Where KVM's guest-memory reads and writes are counted (the vCPU handling the exit). */
export interface GpteCounter {
  gpte_reads: number;
  gpte_writes: number;
}

/** kvm_vcpu_read_guest() and friends: guest-physical memory as KVM reaches it, through memslots and host virtual memory. */
export class GuestMemory {
  counter: GpteCounter = { gpte_reads: 0, gpte_writes: 0 };
  /** The entry the last read returned. */
  lo = 0;
  hi = 0;
  /** Why the last access failed. */
  lastError = "";
  /** Whether the slot of the last access is writable (gfn_to_hva_memslot_prot()'s `writable`). */
  slotWritable = true;
  private lastSlot: Memslot | null = null;

  constructor(
    readonly mem: PhysMem,
    readonly memslots: Memslots,
    readonly host: HostMmOps,
  ) {}

  /** kvm_vcpu_gfn_to_memslot(): the last-used slot, else a search; null outside guest RAM. */
  slotOf(gfn: number): Memslot | null {
    let s = this.lastSlot;
    if (s === null || gfn < s.baseGfn || gfn >= s.baseGfn + s.npages) {
      s = this.memslots.find(gfn);
      if (s === null) return null;
      this.lastSlot = s;
    }
    return s;
  }

  /**
   * The host frame backing gfn, as a user access to its hva finds it: the mapped frame, or the
   * host fault path brings one in (a write breaks copy-on-write). `atomic` never faults
   * (__copy_from_user_inatomic): -1 if the page is not mapped. -1 outside RAM or on failure.
   */
  hostFrame(gfn: number, write: boolean, atomic = false): number {
    const slot = this.slotOf(gfn);
    if (slot === null) {
      this.lastError = `gfn 0x${gfn.toString(16)} is in no memory slot`;
      return -1;
    }
    this.slotWritable = !slot.readonly;
    const hva = gfnToHva(slot, gfn);
    let pfn = this.host.gupFast(hva, write);
    if (pfn < 0 && !atomic) {
      pfn = this.host.gup(hva, write);
      if (pfn < 0) this.lastError = `the host could not back gfn 0x${gfn.toString(16)} (hva 0x${hva.toString(16)}): ${this.host.lastError}`;
    } else if (pfn < 0) {
      this.lastError = `gfn 0x${gfn.toString(16)} is not mapped on the host (atomic access)`;
    }
    // A store through the hva dirties the page (the host PTE's D bit; kvm_release_page_dirty() in cmpxchg_gpte).
    if (pfn >= 0 && write) this.host.markDirty(pfn);
    return pfn;
  }

  /** One 8-byte guest read at gpa into lo/hi; false if it faulted. */
  readGpte(gpa: number, atomic = false): boolean {
    this.counter.gpte_reads++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, false, atomic);
    if (f < 0) return false;
    const mem = this.mem;
    if (mem.isTable(f)) {
      const idx = (gpa - gfn * PAGE_SIZE) / 8;
      this.lo = mem.readLo(f, idx);
      this.hi = mem.readHi(f, idx);
    } else {
      // A page that never held a table (the zero page, a data page) reads as zeroes.
      this.lo = 0;
      this.hi = 0;
    }
    return true;
  }

  /** A 64-byte read of the 8 entries from `gpa` (8-entry aligned) into los/his (kvm_vcpu_read_guest_atomic of prefetch_ptes). */
  readGptes8(gpa: number, los: Uint32Array, his: Uint32Array): boolean {
    this.counter.gpte_reads++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, false, true);
    if (f < 0) return false;
    const mem = this.mem;
    const idx = (gpa - gfn * PAGE_SIZE) / 8;
    const table = mem.isTable(f);
    for (let i = 0; i < 8; i++) {
      los[i] = table ? mem.readLo(f, idx + i) : 0;
      his[i] = table ? mem.readHi(f, idx + i) : 0;
    }
    return true;
  }

  /**
   * __try_cmpxchg_user() on an 8-byte guest entry: 0 if it held (oldLo, oldHi) and now holds
   * (lo, hi), 1 if it held something else (the caller walks again), -1 if it faulted.
   */
  cmpxchgGpte(gpa: number, oldLo: number, oldHi: number, lo: number, hi: number): number {
    this.counter.gpte_writes++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, true);
    if (f < 0) return -1;
    const mem = this.mem;
    const idx = (gpa - gfn * PAGE_SIZE) / 8;
    const curLo = mem.isTable(f) ? mem.readLo(f, idx) : 0;
    const curHi = mem.isTable(f) ? mem.readHi(f, idx) : 0;
    if (curLo !== oldLo || curHi !== oldHi) return 1;
    mem.writeEntry(f, idx, lo, hi);
    return 0;
  }

  /** emulator_write_phys() of one 8-byte entry: the emulator's write to guest RAM. */
  writeGpte(gpa: number, lo: number, hi: number): boolean {
    this.counter.gpte_writes++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, true);
    if (f < 0) return false;
    const mem = this.mem;
    if (!mem.isTable(f)) mem.allocTable(f);
    mem.writeEntry(f, (gpa - gfn * PAGE_SIZE) / 8, lo, hi);
    return true;
  }
}

/**
 * The gfn the guest's own tables map at addr, with no side effect and nothing counted (the
 * probe() of KVM's walk): -1 if not mapped, -2 if a table page is not resident on the host.
 */
export function probeGuestGfn(gm: GuestMemory, levels: number, rootGfn: number, addr: number): number {
  const mem = gm.mem;
  let table = rootGfn;
  for (let level = levels; level >= 1; level--) {
    const f = gm.hostFrame(table, false, true);
    if (f < 0) return -2;
    const idx = Math.floor(addr / LEVEL_SIZE[level]!) & 511;
    const lo = mem.isTable(f) ? mem.readLo(f, idx) : 0;
    const hi = mem.isTable(f) ? mem.readHi(f, idx) : 0;
    if ((lo & PTE_P) === 0) return -1;
    if (level === 1 || (level <= 3 && (lo & PTE_PS) !== 0)) {
      const size = LEVEL_SIZE[level]!;
      return entryPfn(level > 1 ? lo & ~PTE_PAT_HUGE : lo, hi) + Math.floor((addr - Math.floor(addr / size) * size) / PAGE_SIZE);
    }
    table = entryPfn(lo, hi);
  }
  return -1;
}

/** The guest paging state the walk depends on (the cpu_role KVM derives from CR0/CR4/EFER). */
export interface GuestPagingState {
  levels: 4 | 5;
  maxPhyAddr: number;
  cr0Wp: boolean;
  efer_nx: boolean;
  smep: boolean;
  smap: boolean;
}

/** FNAME(gpte_access): an entry's U/W/X as ACC_* bits (NX inverted into X). */
export function gpteAccess(lo: number, hi: number, nxe: boolean): number {
  return (lo & (ACC_WRITE_MASK | ACC_USER_MASK)) | (nxe && (hi & PTE_HI_NX) !== 0 ? 0 : ACC_EXEC_MASK);
}

/** FNAME(protect_clean_gpte): no write access through a clean gpte, so the first write faults and KVM sets D. */
export function protectCleanGpte(access: number, lo: number): number {
  return (lo & PTE_D) !== 0 ? access : access & ~ACC_WRITE_MASK;
}

/** struct guest_walker: what one walk found, level by level (index level - 1). */
export class GuestWalker {
  /** Level of the leaf. */
  level = 0;
  maxLevel = 0;
  /** The gfn the address maps to (the 4 KiB frame inside a huge page). */
  gfn = 0;
  /** Access of the whole walk (ACC_* bits), after protect_clean_gpte on a read. */
  pteAccess = 0;
  readonly tableGfn = new Float64Array(6);
  readonly pteGpa = new Float64Array(6);
  /** Access accumulated above each level (the access of the table at that level). */
  readonly ptAccess = new Uint8Array(6);
  readonly ptesLo = new Uint32Array(6);
  readonly ptesHi = new Uint32Array(6);
  readonly pteWritable = new Uint8Array(6);
  /** prefetch_ptes: the 8 gptes around the leaf, read by gpte_changed() at level 1. */
  readonly prefetchLo = new Uint32Array(8);
  readonly prefetchHi = new Uint32Array(8);
  /** On failure: the #PF error code for the guest, and whether the host could not back a table (not the guest's fault). */
  faultErrorCode = 0;
  hostFailed = false;

  constructor(
    readonly gmem: GuestMemory,
    readonly paging: GuestPagingState,
  ) {}

  /**
   * FNAME(walk_addr_generic)(): walks the tables of root `rootGfn` for `addr` with an access of
   * kind `access` (PFERR_WRITE/USER/FETCH). True with the result in the fields; false with the
   * #PF to inject in faultErrorCode (or hostFailed).
   */
  walk(rootGfn: number, addr: number, access: number): boolean {
    // retry_walk: a failed cmpxchg means the guest changed an entry under us.
    for (let attempt = 0; attempt < 16; attempt++) {
      const r = this.walkOnce(rootGfn, addr, access);
      if (r !== 1) return r === 0;
    }
    throw new Error(`guest walk of 0x${addr.toString(16)} keeps racing with guest writes`);
  }

  /** 0: done, -1: fault, 1: walk again. */
  private walkOnce(rootGfn: number, addr: number, access: number): number {
    const p = this.paging;
    const gm = this.gmem;
    const write = (access & PFERR_WRITE) !== 0;
    const user = (access & PFERR_USER) !== 0;
    const fetch = (access & PFERR_FETCH) !== 0;
    const rsvdHi = rsvdHiMask(p.maxPhyAddr);
    this.hostFailed = false;
    let level: number = p.levels;
    this.maxLevel = level;
    let tableGfn = rootGfn;
    // pte_access: the AND of RW, US, A and the inverted NX of every entry so far.
    let acc = 0x7 | 0x8; // ACC_ALL plus bit 3 standing for A
    let lo = 0;
    let hi = 0;
    for (;;) {
      const ptAcc = acc;
      const idx = Math.floor(addr / LEVEL_SIZE[level]!) & 511;
      const pteGpa = tableGfn * PAGE_SIZE + idx * 8;
      this.tableGfn[level - 1] = tableGfn;
      this.pteGpa[level - 1] = pteGpa;
      if (!gm.readGpte(pteGpa)) {
        // Outside the memslots the guest sees a fault; a host failure is the VMM's problem.
        this.hostFailed = gm.slotOf(tableGfn) !== null;
        return this.error(0, write, user, fetch);
      }
      this.pteWritable[level - 1] = gm.slotWritable ? 1 : 0;
      lo = gm.lo;
      hi = gm.hi;
      acc = ptAcc & (gpteAccess(lo, hi, p.efer_nx) | (lo & PTE_A ? 0x8 : 0));
      if ((lo & PTE_P) === 0) return this.error(0, write, user, fetch);
      const leaf = isX86Leaf(lo, level);
      if (isRsvdGpte(lo, hi, level, leaf, rsvdHi, p.efer_nx)) return this.error(PFERR_RSVD | PFERR_PRESENT, write, user, fetch);
      this.ptesLo[level - 1] = lo;
      this.ptesHi[level - 1] = hi;
      this.ptAccess[level - 1] = ptAcc & 0x7;
      if (leaf) break;
      tableGfn = entryPfn(lo, hi);
      level--;
    }
    this.level = level;
    let pteAccess = acc & 0x7;
    const w = pteAccess & ACC_WRITE_MASK;
    const u = pteAccess & ACC_USER_MASK;
    const x = pteAccess & ACC_EXEC_MASK;
    if (isPermissionFault(access, w, u, x, p.cr0Wp, p.smep, p.smap)) return this.error(PFERR_PRESENT, write, user, fetch);

    const frameLo = level > 1 ? lo & ~PTE_PAT_HUGE : lo;
    const size = LEVEL_SIZE[level]!;
    this.gfn = entryPfn(frameLo, hi) + Math.floor((addr - Math.floor(addr / size) * size) / PAGE_SIZE);
    let accessedDirty = (acc & 0x8) !== 0;
    if (!write) pteAccess = protectCleanGpte(pteAccess, lo);
    else accessedDirty = accessedDirty && (lo & PTE_D) !== 0;
    this.pteAccess = pteAccess;
    if (!accessedDirty) {
      const r = this.updateAccessedDirty(write);
      if (r < 0) {
        this.hostFailed = true;
        return this.error(0, write, user, fetch);
      }
      if (r > 0) return 1;
    }
    return 0;
  }

  /** FNAME(update_accessed_dirty_bits)(): A on every entry of the walk, D on the leaf for a write; one cmpxchg each. */
  private updateAccessedDirty(write: boolean): number {
    for (let level = this.maxLevel; level >= this.level; level--) {
      const orig = this.ptesLo[level - 1]!;
      let lo = orig | PTE_A;
      if (level === this.level && write) lo |= PTE_D;
      if (lo === orig) continue;
      // A read-only slot (ROM) keeps its bits as they are.
      if (this.pteWritable[level - 1] === 0) continue;
      const hi = this.ptesHi[level - 1]!;
      const r = this.gmem.cmpxchgGpte(this.pteGpa[level - 1]!, orig, hi, lo >>> 0, hi);
      if (r !== 0) return r;
      this.ptesLo[level - 1] = lo >>> 0;
    }
    return 0;
  }

  private error(bits: number, write: boolean, user: boolean, fetch: boolean): number {
    const access = (write ? PFERR_WRITE : 0) | (user ? PFERR_USER : 0) | (fetch ? PFERR_FETCH : 0);
    this.faultErrorCode = pfErrorCode(bits, access, this.paging.efer_nx, this.paging.smep);
    return -1;
  }

  /**
   * FNAME(gpte_changed)(): re-reads the gpte at `level` (atomically) to catch a guest write
   * racing the fault; at level 1 reads the aligned 8 entries around it for prefetch.
   */
  gpteChanged(level: number): boolean {
    const gpa = this.pteGpa[level - 1]!;
    let lo: number;
    let hi: number;
    if (level === 1) {
      const base = gpa - (gpa % 64);
      if (!this.gmem.readGptes8(base, this.prefetchLo, this.prefetchHi)) return true;
      const i = (gpa - base) / 8;
      lo = this.prefetchLo[i]!;
      hi = this.prefetchHi[i]!;
    } else {
      if (!this.gmem.readGpte(gpa, true)) return true;
      lo = this.gmem.lo;
      hi = this.gmem.hi;
    }
    return lo !== this.ptesLo[level - 1] || hi !== this.ptesHi[level - 1];
  }
}
