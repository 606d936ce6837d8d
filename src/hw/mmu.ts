// SPDX-License-Identifier: MIT
// One logical processor's address translation: TLBs, paging-structure caches, the nested
// TLB, and the one- and two-dimensional page walks (Intel SDM vol. 3 ch. 4 and 29; AMD APM
// vol. 2 ch. 5 and 15.25). `access()` is the hardware (sets A/D, fills caches, counts);
// `probe()` answers the same question from the tables alone and changes nothing.
//
// This file is the TLB hit path and the instructions that change the context or invalidate
// (MOV to CR3, INVLPG, INVPCID, INVVPID, INVEPT). The walks are walk_guest.ts and
// walk_nested.ts; the state they share is mmu_state.ts. Nothing here allocates per access;
// results come back in fields (hpa, fault, errorCode...).

import { INV_LEVEL_SIZE, INV_PAGE_SIZE, LEVEL_SIZE, PAGE_SIZE } from "./addr.js";
import { XLATE_OK, type XlateResult } from "./mmu_defs.js";
import { KEY_1G, KEY_2M, MmuState, NESTED_FOR_PHYS, pageOffset } from "./mmu_state.js";
import { REF_DATA } from "./walk_log.js";
import { walkGuest } from "./walk_guest.js";
import { nestedTranslate } from "./walk_nested.js";

export * from "./mmu_config.js";
export * from "./mmu_defs.js";
export * from "./mmu_stats.js";

type CtxMatch = (ctx: number, pcid: number, global: boolean) => boolean;

export class Mmu extends MmuState {
  // ---------------------------------------------------------------- translation

  /**
   * Translates `gva` for an access of kind `acc` (ACC_* bits) as the hardware does. On XLATE_OK
   * `hpa` holds the host-physical address; otherwise the fault fields say what stopped it.
   */
  access(gva: number, acc: number): XlateResult {
    const tlb = this.tlb4k;
    if (tlb !== null) {
      const vpn = Math.floor(gva * INV_PAGE_SIZE);
      const i = tlb.lookup(vpn, this.ctxTag, this.pcidTag);
      if (i >= 0 && this.tlbPermits(tlb.perm[i]!, acc)) {
        this.stats.tlbHits++;
        this.pageSize = PAGE_SIZE;
        const off = gva - vpn * PAGE_SIZE;
        this.hpa = tlb.value[i]! * PAGE_SIZE + off;
        this.gpa = tlb.aux[i]! + off;
        if (this.log !== null) this.log.push(REF_DATA, 0, 0, this.hpa, -1, 0, 0);
        return XLATE_OK;
      }
      if (i < 0 && this.hugeTlbHit(gva, acc)) return XLATE_OK;
      this.stats.tlbMisses++;
    }
    return walkGuest(this, gva, acc, true);
  }

  /** The 2 MiB and 1 GiB TLB probes, out of the 4 KiB hit path. True on a usable hit. */
  private hugeTlbHit(gva: number, acc: number): boolean {
    let c = this.tlb2m!;
    let size = LEVEL_SIZE[2]!;
    let n = Math.floor(gva / size);
    let i = c.lookup(n + KEY_2M, this.ctxTag, this.pcidTag);
    if (i < 0) {
      c = this.tlb1g!;
      size = LEVEL_SIZE[3]!;
      n = Math.floor(gva / size);
      i = c.lookup(n + KEY_1G, this.ctxTag, this.pcidTag);
    }
    if (i < 0 || !this.tlbPermits(c.perm[i]!, acc)) return false;
    this.stats.tlbHits++;
    this.pageSize = size;
    this.hpa = c.value[i]! * PAGE_SIZE + (gva - n * size);
    this.gpa = c.aux[i]! + (gva - n * size);
    if (this.log !== null) this.log.push(REF_DATA, 0, 0, this.hpa, -1, 0, 0);
    return true;
  }

  /** The translation the tables give now, with no side effect: no A/D, no cache, no counter (a log still records it). */
  probe(gva: number, acc: number): XlateResult {
    return walkGuest(this, gva, acc, false);
  }

  /** Translates a guest-physical address through EPT/NPT only (no guest paging), e.g. the guest kernel writing its tables. */
  accessPhys(gpa: number, acc: number): XlateResult {
    if (!this.nested) {
      this.hpa = gpa;
      return XLATE_OK;
    }
    this.faultGva = 0;
    const r = nestedTranslate(this, gpa, acc, NESTED_FOR_PHYS, 0, true);
    if (r === XLATE_OK) this.hpa = this.nPfnBase * PAGE_SIZE + pageOffset(gpa);
    return r;
  }

  /** probe() for a guest-physical address. */
  probePhys(gpa: number, acc: number): XlateResult {
    if (!this.nested) {
      this.hpa = gpa;
      return XLATE_OK;
    }
    const r = nestedTranslate(this, gpa, acc, NESTED_FOR_PHYS, 0, false);
    if (r === XLATE_OK) this.hpa = this.nPfnBase * PAGE_SIZE + pageOffset(gpa);
    return r;
  }

  // ---------------------------------------------------------------- context and invalidation

  /** VM entry with a VPID and an EPTP/nCR3 root: selects the tags the caches are looked up with. */
  setNestedContext(vpid: number, nestedRoot: number): void {
    this.vpid = vpid;
    this.nestedRoot = nestedRoot;
    this.refreshTags();
  }

  /** MOV to CR3. With CR4.PCIDE, `pcid` selects the context and `noFlush` (bit 63) keeps its entries. */
  loadCr3(rootFrame: number, pcid = 0, noFlush = false): void {
    this.stats.cr3Loads++;
    this.cr3Frame = rootFrame;
    this.pcid = this.pcide ? pcid & 0xfff : 0;
    this.refreshTags();
    if (!(this.pcide && noFlush)) this.renewPcid(this.ctxTag, this.pcid);
  }

  /** INVLPG: the address's entries in the current PCID and global ones; paging-structure caches of the PCID. */
  invlpg(gva: number): void {
    this.stats.invlpg++;
    const ctx = this.ctxTag;
    const pcid = this.pcidTag;
    this.dropAddress(gva, (c, p, g) => c === ctx && (p === pcid || g));
    this.dropPsc((c, p) => c === ctx && p === pcid);
  }

  /** INVPCID types 0 (address), 1 (single PCID), 2 (all contexts, globals too), 3 (all but globals). */
  invpcid(type: 0 | 1 | 2 | 3, pcid = 0, gva = 0): void {
    this.stats.invpcid++;
    this.tags.invpcid(type, this.vpid, this.ctxTag, pcid, (ctx, tag) => {
      this.dropAddress(gva, (c, p, g) => c === ctx && p === tag && !g);
      this.dropPsc((c, p) => c === ctx && p === tag);
    });
    this.refreshTags();
  }

  /** INVVPID types 0 (address), 1 (single context), 2 (all contexts), 3 (single context, keep globals). */
  invvpid(type: 0 | 1 | 2 | 3, vpid: number, gva = 0): void {
    this.stats.invvpid++;
    this.tags.invvpid(type, vpid, (tags) => {
      this.dropAddress(gva, (c) => tags.has(c));
      this.dropPsc((c) => tags.has(c));
    });
    this.refreshTags();
  }

  /** INVEPT type 1 (single context: one EPTP) or 2 (global): guest-physical and combined mappings. */
  invept(type: 1 | 2, nestedRoot = this.nestedRoot): void {
    this.stats.invept++;
    this.tags.invept(type, nestedRoot);
    this.refreshTags();
  }

  /** CR4.PGE toggle: every entry of the current context, globals included. */
  flushAll(): void {
    this.tags.renewCtx(this.tags.key(this.vpid, this.nestedRoot));
    this.refreshTags();
  }

  /** Number of TLB entries that would still hit in the current context (for reports and tests). */
  tlbLiveEntries(): number {
    const ctx = this.ctxTag;
    const pcid = this.pcidTag;
    const live = (c: number, p: number, g: boolean) => c === ctx && (p === pcid || g);
    let n = 0;
    for (const c of new Set([this.tlb4k, this.tlb2m, this.tlb1g])) if (c) n += c.countValid(live);
    return n;
  }

  private dropAddress(gva: number, match: CtxMatch): void {
    this.tlb4k?.invalidateKey(Math.floor(gva * INV_PAGE_SIZE), match);
    this.tlb2m?.invalidateKey(Math.floor(gva * INV_LEVEL_SIZE[2]!) + KEY_2M, match);
    this.tlb1g?.invalidateKey(Math.floor(gva * INV_LEVEL_SIZE[3]!) + KEY_1G, match);
    if (this.tlb1g === this.tlb2m) this.tlb2m?.invalidateKey(Math.floor(gva * INV_LEVEL_SIZE[2]!) + KEY_2M, match);
  }

  private dropPsc(match: CtxMatch): void {
    for (const c of this.psc) c?.invalidateWhere(match);
  }
}
