// SPDX-License-Identifier: MIT
// One logical processor's MMU state: architectural registers, the results of the last
// translation, the caches, their context tags, and the scratch the walkers hand each other.
// The Mmu (mmu.ts) and the walkers (walk_guest.ts, walk_nested.ts) work on it; nothing here
// is per access.

import { INV_PAGE_SIZE, PAGE_SIZE } from "./addr.js";
import { AssocCache, CP_NX, CP_USER, CP_WRITE_OK } from "./assoc_cache.js";
import type { MmuConfig } from "./mmu_config.js";
import { ACC_FETCH, ACC_USER, ACC_WRITE, PML_HEAD_INDEX, PML_LOG_NR_ENTRIES } from "./mmu_defs.js";
import { newHwStats } from "./mmu_stats.js";
import { ContextTags } from "./context_tags.js";
import type { PhysMem } from "./phys_mem.js";
import type { WalkLog } from "./walk_log.js";
import { rsvdHiMask } from "./x86_pte.js";

/** Key offsets that keep 2 MiB and 1 GiB page numbers apart from 4 KiB ones in a shared array. */
export const KEY_2M = 2 ** 50;
export const KEY_1G = 2 ** 51;

/** Where the gpa being translated came from: a guest table pointer, the final address, or a plain physical access. */
export const NESTED_FOR_TABLE = 0;
export const NESTED_FOR_FINAL = 1;
export const NESTED_FOR_PHYS = 2;

function pscArray(g: MmuConfig["psc"]): (AssocCache | null)[] {
  if (!g) return [null, null, null, null, null, null];
  return [null, null, new AssocCache(g.pde), new AssocCache(g.pdpte), new AssocCache(g.pml4e), new AssocCache(g.pml5e)];
}

export class MmuState {
  readonly config: MmuConfig;
  readonly stats = newHwStats();
  /** Set to a WalkLog to record every reference in order. */
  log: WalkLog | null = null;

  // --- architectural state ---
  /** CR3's root table frame: a guest frame under EPT/NPT, a host frame natively (or a shadow root). */
  cr3Frame = -1;
  pcid = 0;
  pcide = false;
  cr0Wp = true;
  efeNxe = true;
  cr4Pge = true;
  /** CR4.SMEP and CR4.SMAP; setting them recomputes the TLB permission tables. */
  get smep(): boolean {
    return this._smep;
  }
  set smep(v: boolean) {
    this._smep = v;
    this.computeTlbPerms();
  }
  get smap(): boolean {
    return this._smap;
  }
  set smap(v: boolean) {
    this._smap = v;
    this.computeTlbPerms();
  }
  private _smep = false;
  private _smap = false;
  /** Per access kind (ACC_* bits, 0..31): entry bits a TLB hit needs, and bits that forbid it. */
  private readonly tlbNeed = new Int32Array(32);
  private readonly tlbForbid = new Int32Array(32);
  /** EPTP / nCR3 root host frame (nested paging only). */
  nestedRoot = -1;
  vpid = 1;
  /** The "enable PML" VM-execution control (it logs only with EPT A/D flags on). */
  pmlOn = false;
  /** GUEST_PML_INDEX: the entry the next logged gpa goes to, 511 down to 0, then 0xffff (full). */
  pmlIndex = PML_HEAD_INDEX;
  /** The page-modification log at PML_ADDRESS: 4 KiB-aligned gpas. */
  readonly pmlLog = new Float64Array(PML_LOG_NR_ENTRIES);

  // --- results of the last translation ---
  hpa = 0;
  /** The guest-physical address of the last translation (natively, the physical address). */
  gpa = 0;
  /** Size in bytes of the translation's page (the TLB entry's size: min of guest and nested). */
  pageSize = PAGE_SIZE;
  /** Page-fault error code (guest #PF), or #NPF EXITINFO1 (with NPF_FINAL / NPF_GUEST_TABLE). */
  errorCode = 0;
  /** EPT violation exit qualification. */
  exitQual = 0;
  /** The gva of a fault (CR2 / guest-linear address). */
  faultGva = 0;
  /** The gpa of an EPT violation, misconfiguration or NPF. */
  faultGpa = 0;
  /** Level of the entry that stopped the walk. */
  faultLevel = 0;
  /** For misconfigurations: why. */
  faultReason = "";

  // --- caches ---
  readonly tlb4k: AssocCache | null;
  readonly tlb2m: AssocCache | null;
  readonly tlb1g: AssocCache | null;
  readonly psc: (AssocCache | null)[];
  readonly nestedTlb: AssocCache | null;
  readonly nestedPsc: (AssocCache | null)[];

  // --- context tags (see AssocCache): never reused, renewed to flush; the current ones copied out ---
  readonly tags = new ContextTags(this.stats);
  ctxTag = 0;
  pcidTag = 0;
  eptTag = 0;

  // --- per-config constants ---
  readonly nested: boolean;
  readonly isEpt: boolean;
  readonly rsvdHi: number;
  readonly nestedAd: boolean;
  readonly nestedLevels: number;

  // --- walker scratch ---
  /** Nested leaf of the last nestedTranslate: 4 KiB host frame, word offset (-1 after a nested-TLB hit), writable, dirty. */
  nPfnBase = 0;
  nLeafOff = -1;
  nWritable = false;
  nDirtyOk = false;
  nExec = true;
  nSize = PAGE_SIZE;
  /** A paging-structure cache hit: the table's host frame, its guest frame, and the cached rights (CP_*). */
  pscHpfn = 0;
  pscFrame = 0;
  pscPerm = 0;

  constructor(
    readonly mem: PhysMem,
    config: MmuConfig,
  ) {
    if (config.maxPhyAddr < 36 || config.maxPhyAddr > 52) throw new RangeError(`MAXPHYADDR must be 36..52, not ${config.maxPhyAddr}`);
    this.config = config;
    this.nested = config.paging !== "native";
    this.isEpt = config.paging === "ept";
    this.rsvdHi = rsvdHiMask(config.maxPhyAddr);
    this.nestedAd = config.paging === "ept" ? config.eptAd : true;
    this.nestedLevels = config.nestedLevels;
    const t = config.tlb;
    this.tlb4k = t ? new AssocCache(t["4k"]) : null;
    this.tlb2m = t ? (t["2m"] === "shared" ? this.tlb4k : new AssocCache(t["2m"])) : null;
    this.tlb1g = t ? (t["1g"] ? new AssocCache(t["1g"]) : this.tlb2m) : null;
    this.psc = pscArray(config.psc);
    this.nestedTlb = this.nested && config.nestedTlb ? new AssocCache(config.nestedTlb) : null;
    this.nestedPsc = pscArray(this.nested ? config.nestedPsc : null);
    this.computeTlbPerms();
    this.refreshTags();
  }

  /** Entry `i` of the page-modification log. */
  pmlEntry(i: number): number {
    return this.pmlLog[i]!;
  }

  /** Whether a cached translation with `perm` serves an access of kind `acc` without a walk. */
  tlbPermits(perm: number, acc: number): boolean {
    return (perm & this.tlbNeed[acc]!) === this.tlbNeed[acc] && (perm & this.tlbForbid[acc]!) === 0;
  }

  private computeTlbPerms(): void {
    for (let acc = 0; acc < 32; acc++) {
      let need = 0;
      let forbid = 0;
      if ((acc & ACC_WRITE) !== 0) need |= CP_WRITE_OK;
      if ((acc & ACC_USER) !== 0) need |= CP_USER;
      else if (this._smap || ((acc & ACC_FETCH) !== 0 && this._smep)) forbid |= CP_USER;
      if ((acc & ACC_FETCH) !== 0) forbid |= CP_NX;
      this.tlbNeed[acc] = need;
      this.tlbForbid[acc] = forbid;
    }
  }

  // ---------------------------------------------------------------- context tags (context_tags.ts)

  renewPcid(ctx: number, pcid: number): void {
    this.tags.renewPcid(ctx, pcid);
    this.refreshTags();
  }

  /** Selects the tags of the current VPID, root and PCID, making new ones for a context not seen before. */
  refreshTags(): void {
    const t = this.tags;
    t.select(this.vpid, this.nested, this.nestedRoot, this.pcid);
    this.ctxTag = t.ctx;
    this.pcidTag = t.pcid;
    this.eptTag = t.ept;
  }
}

/**
 * The frame an entry points at, as an int32, or -1 when it lies beyond the 2^28 frames PhysMem
 * can hold (such an entry reads as zeroes). Integer-only: the walk's dependent chain is
 * entry -> frame -> table slot -> entry, and double arithmetic on it costs a third of a walk.
 */
export function entryFrame(lo: number, hi: number): number {
  return (hi & 0xfff00) !== 0 ? -1 : (lo >>> 12) | ((hi & 0xff) << 20);
}

export function pageOffset(addr: number): number {
  return addr - Math.floor(addr * INV_PAGE_SIZE) * PAGE_SIZE;
}
