// SPDX-License-Identifier: MIT
// Unsync shadow pages and their resync (arch/x86/kvm/mmu/mmu.c kvm_unsync_page(),
// mark_unsync(), mmu_unsync_walk(), mmu_sync_children(), kvm_sync_page(), and
// paging_tmpl.h FNAME(sync_spte)), and the hook the emulator calls after it writes guest RAM
// (kvm_mmu_track_write(): mmu_pte_write, write-flooding detection, mmu_pde_zapped).
//
// An unsync page is a guest leaf table KVM let the guest write freely: like a TLB, its sptes
// may be stale until the guest flushes (CR3 load, INVLPG), when they are re-read and fixed.
//
// simplified: mmu_sync_children() takes the unsync leaves in batches of 16 (the kernel's 16-entry vector also holds their parents) and never yields.
// simplified: writes are 8-byte aligned gptes of 64-bit guests: get_written_sptes() finds one spte, misalignment never happens from the guest kernel.

import { PAGE_SIZE } from "../hw/addr.js";
import { PTE_A, PTE_P, entryPfn, rsvdHiMask } from "../hw/x86_pte.js";
import { gpteAccess, protectCleanGpte } from "./guest_walker.js";
import type { ShadowMmu } from "./shadow_mmu.js";
import type { ShadowSyncOps } from "./shadow_mmu_pages.js";
import { type KvmMmuPage, sptepIndex, sptepOf } from "./shadow_page.js";
import { X86_MASKS, X86_SPTE_HOST_WRITABLE, isLargeSpte, isShadowPresent, sptePfn } from "./spte.js";

/** KVM_PAGE_ARRAY_NR: pages mmu_sync_children() handles per batch. */
export const KVM_PAGE_ARRAY_NR = 16;

/** One unsync leaf found by mmu_unsync_walk(), with the (page, index) path that leads to it. */
interface UnsyncLeaf {
  sp: KvmMmuPage;
  path: [KvmMmuPage, number][];
}

export class ShadowSync implements ShadowSyncOps {
  constructor(private readonly s: ShadowMmu) {
    s.syncer = this;
  }

  /** kvm_unsync_page(): the guest may now write this leaf table without a fault. */
  unsyncPage(sp: KvmMmuPage): void {
    this.s.stats.mmu_unsync++;
    sp.unsync = true;
    this.markParentsUnsync(sp);
    if (this.s.bus.on) this.s.bus.emit("kvm.unsync", { id: sp.id, gfn: sp.gfn });
  }

  /** kvm_unlink_unsync_page(). */
  unlinkUnsync(sp: KvmMmuPage): void {
    if (!sp.unsync) throw new Error(`shadow MMU: ${sp} is not unsync`);
    sp.unsync = false;
    this.s.stats.mmu_unsync--;
  }

  /** kvm_mmu_mark_parents_unsync(). */
  private markParentsUnsync(sp: KvmMmuPage): void {
    for (const p of sp.parentPtes) this.markUnsync(p);
  }

  /** mark_unsync(): sets the child's bit in the parent page; the first bit propagates up. */
  markUnsync(sptep: number): void {
    const sp = this.s.sptepToSp(sptep);
    const idx = sptepIndex(sptep);
    if (sp.unsyncChildBitmap[idx] !== 0) return;
    sp.unsyncChildBitmap[idx] = 1;
    if (sp.unsyncChildren++ > 0) return;
    this.markParentsUnsync(sp);
  }

  private clearUnsyncChildBit(sp: KvmMmuPage, idx: number): void {
    if (sp.unsyncChildBitmap[idx] === 0) return;
    sp.unsyncChildBitmap[idx] = 0;
    sp.unsyncChildren--;
  }

  /** mmu_unsync_walk(): the unsync leaf pages below `parent`; bits that lead nowhere are cleared. */
  private unsyncWalk(parent: KvmMmuPage): UnsyncLeaf[] {
    const out: UnsyncLeaf[] = [];
    if (parent.unsyncChildren === 0) return out;
    const seen = new Set<KvmMmuPage>();
    const walk = (sp: KvmMmuPage, path: [KvmMmuPage, number][]): number => {
      let nr = 0;
      for (let i = 0; i < 512; i++) {
        if (sp.unsyncChildBitmap[i] === 0) continue;
        const sptep = sptepOf(sp.spt, i);
        const lo = this.s.spteLo(sptep);
        if (!isShadowPresent(lo) || isLargeSpte(X86_MASKS, lo)) {
          this.clearUnsyncChildBit(sp, i);
          continue;
        }
        const child = this.s.childOf(lo, this.s.spteHi(sptep));
        const here: [KvmMmuPage, number][] = [...path, [sp, i]];
        if (child.unsyncChildren > 0) {
          const r = walk(child, here);
          if (r === 0) this.clearUnsyncChildBit(sp, i);
          else nr += r;
        } else if (child.unsync) {
          nr++;
          // mmu_pages_add() keeps each page once; another path's bit is cleared on the next walk.
          if (!seen.has(child)) {
            seen.add(child);
            out.push({ sp: child, path: here });
          }
        } else {
          this.clearUnsyncChildBit(sp, i);
        }
      }
      return nr;
    };
    walk(parent, []);
    return out;
  }

  /** mmu_pages_clear_parents(): clears the leaf's bit in its parent, and upwards while a parent has none left. */
  private clearParents(path: [KvmMmuPage, number][]): void {
    for (let k = path.length - 1; k >= 0; k--) {
      const [sp, idx] = path[k]!;
      this.clearUnsyncChildBit(sp, idx);
      if (sp.unsyncChildren > 0) return;
    }
  }

  /**
   * mmu_sync_children(): write-protects every unsync leaf below `parent` again (one flush per
   * batch) and resyncs its sptes from the guest's entries.
   */
  syncChildren(parent: KvmMmuPage): void {
    const s = this.s;
    const invalid: KvmMmuPage[] = [];
    let flush = false;
    for (;;) {
      const pages = this.unsyncWalk(parent);
      if (pages.length === 0) break;
      for (let b = 0; b < pages.length; b += KVM_PAGE_ARRAY_NR) {
        const batch = pages.slice(b, b + KVM_PAGE_ARRAY_NR);
        let prot = false;
        for (const p of batch) if (s.rmap.writeProtectGfn(p.sp.gfn)) prot = true;
        if (prot) {
          s.remoteFlushOrZap(invalid, true);
          flush = false;
        }
        for (const p of batch) {
          if (p.sp.unsync) {
            this.unlinkUnsync(p.sp);
            if (this.syncPage(p.sp, invalid) > 0) flush = true;
          }
          this.clearParents(p.path);
        }
      }
    }
    s.remoteFlushOrZap(invalid, flush);
  }

  /** kvm_sync_page(): re-reads every gpte behind a non-zero spte; 1 if a flush is due, -1 if the page had to be zapped. */
  syncPage(sp: KvmMmuPage, invalid: KvmMmuPage[]): number {
    const s = this.s;
    let flush = false;
    for (let i = 0; i < 512; i++) {
      const sptep = sptepOf(sp.spt, i);
      if (s.spteLo(sptep) === 0 && s.spteHi(sptep) === 0) continue;
      const r = this.syncSpte(sp, i);
      if (r < 0) {
        s.prepareZap(sp, invalid);
        return -1;
      }
      if (r > 0) flush = true;
    }
    if (s.bus.on) s.bus.emit("kvm.sync_page", { id: sp.id, gfn: sp.gfn, flush: flush ? 1 : 0 });
    return flush ? 1 : 0;
  }

  /** FNAME(sync_spte)(): one spte of an unsync leaf page against its gpte now. 1: changed (flush), 0: same, -1: unreadable. */
  syncSpte(sp: KvmMmuPage, i: number): number {
    const s = this.s;
    const gm = s.gmem;
    const sptep = sptepOf(sp.spt, i);
    if (gm.readGpte(sp.gfn * PAGE_SIZE + i * 8, true) < 0) return -1;
    const glo = gm.lo;
    const ghi = gm.hi;
    if (this.prefetchInvalidGpte(sptep, glo, ghi)) return 1;
    const gfn = entryPfn(glo, ghi);
    const access = protectCleanGpte(sp.access & gpteAccess(glo, ghi, s.efer_nx), glo);
    if (gfn !== sp.gfnAt(i)) {
      s.rmap.dropSpte(sptep);
      return 1;
    }
    if (sp.accessAt(i) === access) return 0;
    sp.setTranslation(i, gfn, access);
    const lo = s.spteLo(sptep);
    const hi = s.spteHi(sptep);
    s.leafSpte(sp, access, gfn, sptePfn(X86_MASKS, lo, hi, sp.level), lo, true, true, (lo & X86_SPTE_HOST_WRITABLE) !== 0);
    return s.spteUpdate(sptep, s.newLo, s.newHi) ? 1 : 0;
  }

  /** FNAME(prefetch_invalid_gpte)(): a gpte not present, not accessed or with reserved bits drops its spte. */
  prefetchInvalidGpte(sptep: number, glo: number, ghi: number): boolean {
    const s = this.s;
    const rsvd = (ghi & rsvdHiMask(s.maxPhyAddr)) !== 0;
    if ((glo & PTE_P) !== 0 && (glo & PTE_A) !== 0 && !rsvd) return false;
    s.rmap.dropSpte(sptep);
    return true;
  }

  /** mmu_zap_unsync_children(): zapping an upper page zaps the unsync leaves below it. */
  zapUnsyncChildren(parent: KvmMmuPage, invalid: KvmMmuPage[]): number {
    if (parent.level === 1) return 0;
    let zapped = 0;
    for (;;) {
      const pages = this.unsyncWalk(parent);
      if (pages.length === 0) break;
      for (const p of pages) {
        if (!p.sp.invalid) {
          this.s.prepareZap(p.sp, invalid);
          zapped++;
        }
        this.clearParents(p.path);
      }
    }
    return zapped;
  }

  /**
   * kvm_mmu_track_write(): the emulator wrote `bytes` of guest RAM at gpa. Each page shadowing
   * that frame either is zapped (misaligned write, or the third write to an upper-level page
   * no fault used in between: write flooding) or loses the spte of the written gpte.
   */
  trackWrite(gpa: number, bytes: number): void {
    const s = this.s;
    if (s.indirectShadowPages === 0) return;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const offset = gpa - gfn * PAGE_SIZE;
    // mmu_pte_write_fetch_gpte(): the new gpte, read back atomically.
    const aligned = offset - (offset % 8);
    const gentry = s.gmem.readGpte(gfn * PAGE_SIZE + aligned, true) >= 0 && (s.gmem.lo !== 0 || s.gmem.hi !== 0);
    s.stats.mmu_pte_write++;
    const invalid: KvmMmuPage[] = [];
    let flush = false;
    for (const sp of s.indirectPagesOf(gfn)) {
      if (sp.invalid) continue;
      if (detectWriteMisaligned(offset, bytes) || detectWriteFlooding(sp)) {
        s.prepareZap(sp, invalid);
        s.stats.mmu_flooded++;
        if (s.bus.on) s.bus.emit("kvm.write_flooding", { id: sp.id, gfn, level: sp.level });
        continue;
      }
      // get_written_sptes(): one spte for a 64-bit gpte.
      const idx = aligned / 8;
      if (s.zapPte(sp, idx)) flush = true;
      if (gentry && sp.level > 1) s.stats.mmu_pde_zapped++;
    }
    s.remoteFlushOrZap(invalid, flush);
    if (s.bus.on) s.bus.emit("kvm.pte_write", { gpa, bytes });
  }
}

/** detect_write_misaligned(): a write under 4 bytes or across a gpte (a 1-byte write at a gpte's start is fine). */
export function detectWriteMisaligned(offset: number, bytes: number): boolean {
  if ((offset & 7) === 0 && bytes === 1) return false;
  return ((offset ^ (offset + bytes - 1)) & ~7) !== 0 || bytes < 4;
}

/** detect_write_flooding(): only above level 1 (a leaf page goes unsync instead); the third write without a fault through it. */
export function detectWriteFlooding(sp: KvmMmuPage): boolean {
  if (sp.level === 1) return false;
  sp.writeFloodingCount++;
  return sp.writeFloodingCount >= 3;
}
