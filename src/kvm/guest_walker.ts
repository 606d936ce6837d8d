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

import { type DirtyLogCtx, markPageDirtyInSlot } from "./dirty_mark.js";
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
  entryPfn,
  rsvdHiMask,
} from "../hw/x86_pte.js";
import { isPermissionFault, isRsvdGpte, isX86Leaf, pfErrorCode } from "../hw/x86_rules.js";
import { type Memslot, type Memslots, gfnToHva, kvmVcpuGfnToMemslot } from "./memslot.js";
import type { HostMmOps } from "./mmu.js";
import { ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK } from "./shadow_page.js";

/** The vCPU whose exit KVM is handling: where guest-memory reads and writes are counted, and its last-used memslot. */
export interface GuestMemoryVcpu {
  readonly stats: { gpte_reads: number; gpte_writes: number };
  lastUsedSlot: Memslot | null;
}

/** hostFrame() failures; a failed get_user_pages() returns its -errno. */
export const GMEM_NO_SLOT = -1;
export const GMEM_NOT_MAPPED = -2;

/** kvm_vcpu_read_guest() and friends: guest-physical memory as KVM reaches it, through memslots and host virtual memory. */
export class GuestMemory {
  vcpu: GuestMemoryVcpu = { stats: { gpte_reads: 0, gpte_writes: 0 }, lastUsedSlot: null };
  /** The entry the last read returned. */
  lo = 0;
  hi = 0;
  /** struct kvm as mark_page_dirty_in_slot() reads it (set by x86.ts), or null. */
  dirtyLogCtx: DirtyLogCtx | null = null;
  /** Whether the slot of the last access is writable (gfn_to_hva_memslot_prot()'s `writable`). */
  slotWritable = true;

  constructor(
    readonly mem: PhysMem,
    readonly memslots: Memslots,
    readonly host: HostMmOps,
  ) {}

  /**
   * The host frame backing gfn, as a user access to its hva finds it: the mapped frame, or the
   * host fault path brings one in (a write breaks copy-on-write). `atomic` never faults
   * (__copy_from_user_inatomic): GMEM_NOT_MAPPED if the page is not mapped. GMEM_NO_SLOT outside
   * the memslots, the -errno of get_user_pages() if the host could not back it.
   */
  hostFrame(gfn: number, write: boolean, atomic = false): number {
    const slot = kvmVcpuGfnToMemslot(this.vcpu, this.memslots, gfn);
    if (slot === null) return GMEM_NO_SLOT;
    this.slotWritable = !slot.readonly;
    const hva = gfnToHva(slot, gfn);
    let pfn = this.host.gupFast(hva, write);
    if (pfn < 0) pfn = atomic ? GMEM_NOT_MAPPED : this.host.gup(hva, write);
    // A store through the hva dirties the page (the host PTE's D bit; kvm_release_page_dirty() in cmpxchg_gpte).
    if (pfn >= 0 && write) this.host.markDirty(pfn);
    // kvm_vcpu_mark_page_dirty(): KVM's own writes (emulated stores, the walker's A/D updates) are logged.
    if (pfn >= 0 && write && this.dirtyLogCtx !== null) markPageDirtyInSlot(this.dirtyLogCtx, slot, gfn);
    return pfn;
  }

  /** A failure code of hostFrame() for gfn, in a sentence. */
  failure(err: number, gfn: number): string {
    if (err === GMEM_NO_SLOT) return `gfn 0x${gfn.toString(16)} is in no memory slot`;
    if (err === GMEM_NOT_MAPPED) return `gfn 0x${gfn.toString(16)} is not mapped on the host (atomic access)`;
    const hva = gfnToHva(this.memslots.find(gfn)!, gfn);
    return `the host could not back gfn 0x${gfn.toString(16)} (hva 0x${hva.toString(16)}): ${this.host.gupError(err)}`;
  }

  /** One 8-byte guest read at gpa into lo/hi: the host frame read, or hostFrame()'s failure code. */
  readGpte(gpa: number, atomic = false): number {
    this.vcpu.stats.gpte_reads++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, false, atomic);
    if (f < 0) return f;
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
    return f;
  }

  /** A 64-byte read of the 8 entries from `gpa` (8-entry aligned) into los/his (kvm_vcpu_read_guest_atomic of prefetch_ptes); false if it faulted. */
  readGptes8(gpa: number, los: Uint32Array, his: Uint32Array): boolean {
    this.vcpu.stats.gpte_reads++;
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
   * (lo, hi), 1 if it held something else (the caller walks again), hostFrame()'s failure code if it faulted.
   */
  cmpxchgGpte(gpa: number, oldLo: number, oldHi: number, lo: number, hi: number): number {
    this.vcpu.stats.gpte_writes++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, true);
    if (f < 0) return f;
    const mem = this.mem;
    const idx = (gpa - gfn * PAGE_SIZE) / 8;
    const curLo = mem.isTable(f) ? mem.readLo(f, idx) : 0;
    const curHi = mem.isTable(f) ? mem.readHi(f, idx) : 0;
    if (curLo !== oldLo || curHi !== oldHi) return 1;
    mem.writeEntry(f, idx, lo, hi);
    return 0;
  }

  /** emulator_write_phys() of one 8-byte entry: the emulator's write to guest RAM. The host frame, or hostFrame()'s failure code. */
  writeGpte(gpa: number, lo: number, hi: number): number {
    this.vcpu.stats.gpte_writes++;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = this.hostFrame(gfn, true);
    if (f < 0) return f;
    const mem = this.mem;
    if (!mem.isTable(f)) mem.allocTable(f);
    mem.writeEntry(f, (gpa - gfn * PAGE_SIZE) / 8, lo, hi);
    return f;
  }
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
  /** On failure: the #PF error code for the guest. */
  faultErrorCode = 0;
  /** On failure, if the host could not back a guest table (not the guest's fault): hostFrame()'s failure code and the gfn, else 0. */
  hostError = 0;
  hostErrorGfn = 0;

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
    this.hostError = 0;
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
      const r = gm.readGpte(pteGpa);
      if (r < 0) {
        // Outside the memslots the guest sees a fault; a host failure is the VMM's problem.
        if (r !== GMEM_NO_SLOT) this.hostFailure(r, tableGfn);
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
      if (r < 0) return this.error(0, write, user, fetch);
      if (r > 0) return 1;
    }
    return 0;
  }

  /** FNAME(update_accessed_dirty_bits)(): A on every entry of the walk, D on the leaf for a write; one cmpxchg each. */
  private updateAccessedDirty(write: boolean): number {
    for (let level = this.maxLevel; level >= this.level; level--) {
      const orig = this.ptesLo[level - 1]!;
      let lo = (orig | PTE_A) >>> 0;
      if (level === this.level && write) lo = (lo | PTE_D) >>> 0;
      if (lo === orig) continue;
      // A read-only slot (ROM) keeps its bits as they are.
      if (this.pteWritable[level - 1] === 0) continue;
      const hi = this.ptesHi[level - 1]!;
      const gpa = this.pteGpa[level - 1]!;
      const r = this.gmem.cmpxchgGpte(gpa, orig, hi, lo, hi);
      if (r < 0) this.hostFailure(r, Math.floor(gpa / PAGE_SIZE));
      if (r !== 0) return r;
      this.ptesLo[level - 1] = lo;
    }
    return 0;
  }

  private hostFailure(err: number, gfn: number): void {
    this.hostError = err;
    this.hostErrorGfn = gfn;
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
      if (this.gmem.readGpte(gpa, true) < 0) return true;
      lo = this.gmem.lo;
      hi = this.gmem.hi;
    }
    return lo !== this.ptesLo[level - 1] || hi !== this.ptesHi[level - 1];
  }
}
