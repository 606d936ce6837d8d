// SPDX-License-Identifier: MIT
// One logical processor's address translation: TLBs, paging-structure caches, the nested
// TLB, and the one- and two-dimensional page walks (Intel SDM vol. 3 ch. 4 and 29; AMD APM
// vol. 2 ch. 5 and 15.25). `access()` is the hardware (sets A/D, fills caches, counts);
// `probe()` answers the same question from the tables alone and changes nothing.
//
// The TLB hit path is `access()`; walks live out of line in `walk()` and `nestedTranslate()`.
// Nothing here allocates per access; results come back in fields (hpa, fault, errorCode...).

import { INV_LEVEL_SIZE, INV_PAGE_SIZE, LEVEL_SIZE, PAGE_SIZE } from "./addr.js";
import {
  AssocCache,
  CP_EXEC,
  CP_GLOBAL,
  CP_NTABLE_DIRTY,
  CP_NTABLE_WRITABLE,
  CP_NX,
  CP_USER,
  CP_WRITABLE,
  CP_WRITE_OK,
  type CacheGeometry,
} from "./assoc_cache.js";
import { EPT_A, EPT_D, EPT_PS, EPT_R, EPT_W, eptNonLeafRsvdLo, isReservedMemType } from "./ept_pte.js";
import type { CounterDesc } from "./counters.js";
import type { PhysMem } from "./phys_mem.js";
import { type WalkLog, REF_DATA, REF_GUEST_TABLE, REF_NESTED_TABLE } from "./walk_log.js";
import {
  PFERR_FETCH,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_HI_NX,
  PTE_P,
  PTE_PAT_HUGE,
  PTE_PS,
  hugeRsvdLoMask,
  rsvdHiMask,
} from "./x86_pte.js";

export type PagingMode = "native" | "ept" | "npt";

/** Access kinds use the page-fault error-code bits: read is 0. */
export const ACC_READ = 0;
export const ACC_WRITE = PFERR_WRITE;
export const ACC_USER = PFERR_USER;
export const ACC_FETCH = PFERR_FETCH;

/** Outcomes of a translation. */
export const XLATE_OK = 0;
export const XLATE_GUEST_PF = 1;
export const XLATE_EPT_VIOLATION = 2;
export const XLATE_EPT_MISCONFIG = 3;
export const XLATE_NPF = 4;
export type XlateResult = 0 | 1 | 2 | 3 | 4;

/** EPT violation exit qualification bits (SDM 28.2.1, table 28-7). */
export const EPTQ_READ = 1 << 0;
export const EPTQ_WRITE = 1 << 1;
export const EPTQ_FETCH = 1 << 2;
export const EPTQ_READABLE = 1 << 3;
export const EPTQ_WRITABLE = 1 << 4;
export const EPTQ_EXECUTABLE = 1 << 5;
export const EPTQ_GLA_VALID = 1 << 7;
export const EPTQ_GLA_FINAL = 1 << 8;

/** AMD #NPF EXITINFO1 high bits: fault on the final gpa (bit 32) or on a guest table (bit 33). */
export const NPF_FINAL = 2 ** 32;
export const NPF_GUEST_TABLE = 2 ** 33;

/** Key offsets that keep 2 MiB and 1 GiB page numbers apart from 4 KiB ones in a shared array. */
const KEY_2M = 2 ** 50;
const KEY_1G = 2 ** 51;

/** Where the gpa being translated came from: a guest table pointer, the final address, or a plain physical access. */
const NESTED_FOR_TABLE = 0;
const NESTED_FOR_FINAL = 1;
const NESTED_FOR_PHYS = 2;

export interface TlbConfig {
  "4k": CacheGeometry;
  /** "shared": 2 MiB entries live in the 4 KiB array (as in a unified STLB). */
  "2m": CacheGeometry | "shared";
  /** null: 1 GiB translations are cached as 2 MiB ones ("smashed"). */
  "1g": CacheGeometry | null;
}

export interface MmuConfig {
  paging: PagingMode;
  guestLevels: 4 | 5;
  /** Levels of the EPT/NPT tables; ignored natively. */
  nestedLevels: 4 | 5;
  /** Physical-address width; frame bits above it are reserved. */
  maxPhyAddr: number;
  /** EPTP bit 6: EPT accessed/dirty flags. NPT always has them. */
  eptAd: boolean;
  /** null: no TLB (every access walks). */
  tlb: TlbConfig | null;
  /** Guest paging-structure caches (combined, gva prefix -> table hpa), by level 2..5; null: off. */
  psc: { pde: CacheGeometry; pdpte: CacheGeometry; pml4e: CacheGeometry; pml5e: CacheGeometry } | null;
  /** Nested TLB (gpa -> hpa, "guest-physical mappings"); null: off. */
  nestedTlb: CacheGeometry | null;
  /** Nested paging-structure caches (gpa prefix -> EPT/NPT table hpa); null: off. */
  nestedPsc: { pde: CacheGeometry; pdpte: CacheGeometry; pml4e: CacheGeometry; pml5e: CacheGeometry } | null;
}

/** Hardware event counters; plain names, as the kernel has none for these. */
export class HwStats {
  tlbHits = 0;
  tlbMisses = 0;
  walks = 0;
  guestTableReads = 0;
  nestedTableReads = 0;
  /** Accesses completed by a walk; with tlbHits they make dataAccesses (kept apart to spare the hit path a store). */
  walkDataAccesses = 0;
  /** Guest paging-structure entries whose A or D bit the walker set. */
  adWrites = 0;
  /** EPT/NPT entries whose A or D bit the walker set. */
  nestedAdWrites = 0;
  pscHits = 0;
  pscMisses = 0;
  nestedTlbHits = 0;
  nestedTlbMisses = 0;
  nestedPscHits = 0;
  nestedPscMisses = 0;
  guestPageFaults = 0;
  eptViolations = 0;
  eptMisconfigs = 0;
  npfs = 0;
  cr3Loads = 0;
  invlpg = 0;
  invpcid = 0;
  invvpid = 0;
  invept = 0;
  /** Invalidations that dropped every non-global (or every) entry of a context. */
  contextFlushes = 0;

  /** The accesses themselves: every TLB hit and every walk that completed. */
  get dataAccesses(): number {
    return this.tlbHits + this.walkDataAccesses;
  }

  reset(): void {
    for (const k of Object.keys(this) as (keyof HwStats)[]) (this as unknown as Record<string, number>)[k] = 0;
  }

  toJSON(): Record<string, number> {
    const { walkDataAccesses: _, ...rest } = this;
    return { ...rest, dataAccesses: this.dataAccesses } as unknown as Record<string, number>;
  }
}

/** Hardware counters: plain names, as the kernel has none for these. */
export const HW_COUNTERS: readonly CounterDesc[] = [
  { name: "tlbHits", kind: "cumulative", unit: "events", description: "translations served by the TLB" },
  { name: "tlbMisses", kind: "cumulative", unit: "events", description: "translations that needed a page walk" },
  {
    name: "walks",
    kind: "cumulative",
    unit: "events",
    description: "page walks started (1D natively or over shadow tables, 2D under EPT/NPT)",
  },
  {
    name: "guestTableReads",
    kind: "cumulative",
    unit: "references",
    description: "reads of guest paging-structure entries (natively, of any paging-structure entry)",
  },
  {
    name: "nestedTableReads",
    kind: "cumulative",
    unit: "references",
    description: "reads of EPT/NPT entries while translating guest-physical addresses",
  },
  { name: "dataAccesses", kind: "cumulative", unit: "references", description: "the accesses themselves" },
  { name: "adWrites", kind: "cumulative", unit: "events", description: "guest paging-structure entries whose A or D bit the walker set" },
  { name: "nestedAdWrites", kind: "cumulative", unit: "events", description: "EPT/NPT entries whose A or D bit the walker set" },
  {
    name: "pscHits",
    kind: "cumulative",
    unit: "events",
    description: "walks that started below the root thanks to a paging-structure cache",
  },
  { name: "pscMisses", kind: "cumulative", unit: "events", description: "walks that started at the root" },
  { name: "nestedTlbHits", kind: "cumulative", unit: "events", description: "guest-physical translations served by the nested TLB" },
  { name: "nestedTlbMisses", kind: "cumulative", unit: "events", description: "guest-physical translations that walked EPT/NPT" },
  { name: "nestedPscHits", kind: "cumulative", unit: "events", description: "nested walks that started below the EPT/NPT root" },
  { name: "nestedPscMisses", kind: "cumulative", unit: "events", description: "nested walks that started at the EPT/NPT root" },
  { name: "guestPageFaults", kind: "cumulative", unit: "events", description: "translations that stopped with a guest #PF" },
  { name: "eptViolations", kind: "cumulative", unit: "events", description: "translations that stopped with an EPT violation" },
  { name: "eptMisconfigs", kind: "cumulative", unit: "events", description: "translations that stopped with an EPT misconfiguration" },
  { name: "npfs", kind: "cumulative", unit: "events", description: "translations that stopped with an AMD #NPF" },
  { name: "cr3Loads", kind: "cumulative", unit: "events", description: "MOV to CR3 executed" },
  { name: "invlpg", kind: "cumulative", unit: "events", description: "INVLPG executed" },
  { name: "invpcid", kind: "cumulative", unit: "events", description: "INVPCID executed" },
  { name: "invvpid", kind: "cumulative", unit: "events", description: "INVVPID executed" },
  { name: "invept", kind: "cumulative", unit: "events", description: "INVEPT executed" },
  {
    name: "contextFlushes",
    kind: "cumulative",
    unit: "events",
    description: "invalidations that dropped every non-global (or every) entry of a context",
  },
];

/** Intel Golden Cove STLB: 2048 entries, 16-way, 4 KiB and 2 MiB shared; 1 GiB: 1024 entries, 8-way. */
export const TLB_INTEL_GOLDEN_COVE: TlbConfig = { "4k": { sets: 128, ways: 16 }, "2m": "shared", "1g": { sets: 128, ways: 8 } };
/** AMD Zen 4 L2 DTLB: 3072 entries, 24-way, 4 KiB and 2 MiB; 1 GiB pages only in the 72-entry fully associative L1 DTLB. */
export const TLB_AMD_ZEN4: TlbConfig = { "4k": { sets: 128, ways: 24 }, "2m": "shared", "1g": { sets: 1, ways: 72 } };
/** Paging-structure cache sizes (not documented by the vendors; the small caches of Barr et al., ISCA 2010). */
export const PSC_DEFAULT = {
  pde: { sets: 8, ways: 4 },
  pdpte: { sets: 1, ways: 4 },
  pml4e: { sets: 1, ways: 2 },
  pml5e: { sets: 1, ways: 2 },
};
export const NESTED_TLB_DEFAULT: CacheGeometry = { sets: 16, ways: 4 };

export function defaultMmuConfig(paging: PagingMode, over: Partial<MmuConfig> = {}): MmuConfig {
  return {
    paging,
    guestLevels: 4,
    nestedLevels: 4,
    maxPhyAddr: 46,
    eptAd: true,
    tlb: TLB_INTEL_GOLDEN_COVE,
    psc: PSC_DEFAULT,
    nestedTlb: paging === "native" ? null : NESTED_TLB_DEFAULT,
    nestedPsc: paging === "native" ? null : PSC_DEFAULT,
    ...over,
  };
}

function pscArray(g: MmuConfig["psc"]): (AssocCache | null)[] {
  if (!g) return [null, null, null, null, null, null];
  return [null, null, new AssocCache(g.pde), new AssocCache(g.pdpte), new AssocCache(g.pml4e), new AssocCache(g.pml5e)];
}

export class Mmu {
  readonly config: MmuConfig;
  readonly stats = new HwStats();
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
  private readonly tlb4k: AssocCache | null;
  private readonly tlb2m: AssocCache | null;
  private readonly tlb1g: AssocCache | null;
  private readonly psc: (AssocCache | null)[];
  private readonly nestedTlb: AssocCache | null;
  private readonly nestedPsc: (AssocCache | null)[];

  // --- context tags (see AssocCache): never reused, renewed to flush ---
  private nextTag = 1;
  private readonly ctxTags = new Map<string, number>();
  private readonly pcidTags = new Map<number, Map<number, number>>();
  private readonly eptTags = new Map<number, number>();
  private ctxTag = 0;
  private pcidTag = 0;
  private eptTag = 0;

  // --- per-config constants and scratch of the nested walk ---
  private readonly nested: boolean;
  private readonly isEpt: boolean;
  private readonly rsvdHi: number;
  private readonly nestedAd: boolean;
  private readonly nestedLevels: number;
  /** Nested leaf of the last nestedTranslate: 4 KiB host frame, word offset (-1 after a nested-TLB hit), writable, dirty. */
  private nPfnBase = 0;
  private nLeafOff = -1;
  private nWritable = false;
  private nDirtyOk = false;
  private nExec = true;
  private nSize = PAGE_SIZE;

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
    return this.walk(gva, acc, true);
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
    return this.walk(gva, acc, false);
  }

  /** Translates a guest-physical address through EPT/NPT only (no guest paging), e.g. the guest kernel writing its tables. */
  accessPhys(gpa: number, acc: number): XlateResult {
    if (!this.nested) {
      this.hpa = gpa;
      return XLATE_OK;
    }
    this.faultGva = 0;
    const r = this.nestedTranslate(gpa, acc, NESTED_FOR_PHYS, 0, true);
    if (r === XLATE_OK) this.hpa = this.nPfnBase * PAGE_SIZE + pageOffset(gpa);
    return r;
  }

  /** probe() for a guest-physical address. */
  probePhys(gpa: number, acc: number): XlateResult {
    if (!this.nested) {
      this.hpa = gpa;
      return XLATE_OK;
    }
    const r = this.nestedTranslate(gpa, acc, NESTED_FOR_PHYS, 0, false);
    if (r === XLATE_OK) this.hpa = this.nPfnBase * PAGE_SIZE + pageOffset(gpa);
    return r;
  }

  /** Whether a cached translation with `perm` serves an access of kind `acc` without a walk. */
  private tlbPermits(perm: number, acc: number): boolean {
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

  /** The page walk (SDM 4.5, and 29.3.2 for the nested dimension). */
  private walk(gva: number, acc: number, se: boolean): XlateResult {
    const mem = this.mem;
    const stats = this.stats;
    const levels = this.config.guestLevels;
    const nested = this.nested;
    const log = this.log;
    if (se) stats.walks++;
    this.faultGva = gva;

    let level = levels;
    let tableFrame = this.cr3Frame; // gfn (nested) or pfn (native) of the current table
    let tableHpfn = nested ? -1 : tableFrame;
    let rw = 1;
    let us = 1;
    let nx = 0;
    // Combined paging-structure caches: the deepest hit skips the upper levels and their nested walks.
    if (se && this.psc[2] !== null) {
      for (let l = 2; l <= levels; l++) {
        const c = this.psc[l]!;
        const i = c.lookup(Math.floor(gva * INV_LEVEL_SIZE[l]!), this.ctxTag, this.pcidTag);
        if (i >= 0) {
          stats.pscHits++;
          level = l - 1;
          tableHpfn = c.value[i]!;
          tableFrame = c.aux[i]!;
          const p = c.perm[i]!;
          rw = p & CP_WRITABLE ? 1 : 0;
          us = p & CP_USER ? 1 : 0;
          nx = p & CP_NX ? 1 : 0;
          this.nWritable = (p & CP_NTABLE_WRITABLE) !== 0;
          this.nDirtyOk = (p & CP_NTABLE_DIRTY) !== 0;
          this.nLeafOff = -1;
          break;
        }
      }
      if (level === levels) stats.pscMisses++;
    }
    const tableAcc = this.isEpt && this.config.eptAd ? ACC_WRITE : ACC_READ;
    const nxe = this.efeNxe;
    const slots = mem.tableSlot;
    const words = mem.words;
    let lo = 0;
    let hi = 0;
    let off = 0;
    let tableGpa = -1;
    for (;;) {
      tableGpa = nested ? tableFrame * PAGE_SIZE : -1;
      if (tableHpfn < 0) {
        const r = this.nestedTranslate(tableGpa + tableIndexOf(gva, level) * 8, tableAcc, NESTED_FOR_TABLE, level, se);
        if (r !== XLATE_OK) return r;
        tableHpfn = this.nPfnBase;
      }
      if (se && level < levels && this.psc[level + 1] !== null) {
        this.psc[level + 1]!.fill(
          Math.floor(gva * INV_LEVEL_SIZE[level + 1]!),
          this.ctxTag,
          this.pcidTag,
          tableHpfn,
          (rw ? CP_WRITABLE : 0) |
            (us ? CP_USER : 0) |
            (nx ? CP_NX : 0) |
            (!nested || this.nWritable ? CP_NTABLE_WRITABLE : 0) |
            (!nested || this.nDirtyOk ? CP_NTABLE_DIRTY : 0),
          tableFrame,
        );
      }
      const idx = tableIndexOf(gva, level);
      const slot = tableHpfn >= 0 ? slots[tableHpfn]! - 1 : -1;
      if (slot >= 0) {
        off = (slot << 10) | (idx << 1);
        lo = words[off]!;
        hi = words[off + 1]!;
      } else {
        off = -1;
        lo = 0;
        hi = 0;
      }
      if (se) stats.guestTableReads++;
      if (log !== null)
        log.push(REF_GUEST_TABLE, level, level, tableHpfn * PAGE_SIZE + idx * 8, tableGpa < 0 ? -1 : tableGpa + idx * 8, lo, hi);
      if ((lo & PTE_P) === 0) return this.guestFault(acc, 0, level, se);
      const leaf = level === 1 || ((lo & PTE_PS) !== 0 && level <= 3);
      if (
        (hi & this.rsvdHi) !== 0 ||
        (!nxe && (hi & PTE_HI_NX) !== 0) ||
        (level >= 4 && (lo & PTE_PS) !== 0) ||
        (leaf && (lo & hugeRsvdLoMask(level)) !== 0)
      ) {
        return this.guestFault(acc, PFERR_PRESENT | PFERR_RSVD, level, se);
      }
      rw &= (lo >>> 1) & 1;
      us &= (lo >>> 2) & 1;
      if (nxe) nx |= hi >>> 31;
      if (leaf) break;
      if (se && (lo & PTE_A) === 0) {
        const r = this.guestAdWrite(off, lo | PTE_A, tableGpa + idx * 8, level);
        if (r !== XLATE_OK) return r;
      }
      if (nested) {
        tableFrame = (lo >>> 12) + (hi & 0xfffff) * 0x100000;
        tableHpfn = -1;
      } else {
        tableHpfn = tableFrame = entryFrame(lo, hi);
      }
      level--;
    }

    // Leaf: permission check (SDM 4.6).
    const write = (acc & ACC_WRITE) !== 0;
    const user = (acc & ACC_USER) !== 0;
    const fetch = (acc & ACC_FETCH) !== 0;
    if (user) {
      if (!us || (write && !rw) || (fetch && nx)) return this.guestFault(acc, PFERR_PRESENT, level, se);
    } else {
      if (write && !rw && this.cr0Wp) return this.guestFault(acc, PFERR_PRESENT, level, se);
      if (fetch && (nx || (us && this.smep))) return this.guestFault(acc, PFERR_PRESENT, level, se);
      if (!fetch && us && this.smap) return this.guestFault(acc, PFERR_PRESENT, level, se);
    }
    const newLo = lo | PTE_A | (write ? PTE_D : 0);
    if (se && newLo !== lo) {
      const r = this.guestAdWrite(off, newLo, tableGpa + tableIndexOf(gva, level) * 8, level);
      if (r !== XLATE_OK) return r;
      lo = newLo;
    }
    const gSize = LEVEL_SIZE[level]!;
    const frameLo = level > 1 ? lo & ~PTE_PAT_HUGE : lo;
    const gpa = ((frameLo >>> 12) + (hi & 0xfffff) * 0x100000) * PAGE_SIZE + (gva - Math.floor(gva / gSize) * gSize);
    this.gpa = gpa;

    let size = gSize;
    let hpa = gpa;
    let writeOk = rw === 1 && (lo & PTE_D) !== 0;
    let writable = rw === 1;
    let exec = true;
    if (nested) {
      const r = this.nestedTranslate(gpa, acc & ~ACC_USER, NESTED_FOR_FINAL, 0, se);
      if (r !== XLATE_OK) return r;
      hpa = this.nPfnBase * PAGE_SIZE + pageOffset(gpa);
      if (this.nSize < size) size = this.nSize;
      writable = writable && this.nWritable;
      writeOk = writeOk && this.nWritable && this.nDirtyOk;
      exec = this.nExec;
    }
    this.hpa = hpa;
    this.pageSize = size;
    if (se) {
      stats.walkDataAccesses++;
      if (log !== null) log.push(REF_DATA, 0, 0, hpa, nested ? gpa : -1, 0, 0);
      if (this.tlb4k !== null) {
        const c = size === PAGE_SIZE ? this.tlb4k : size === LEVEL_SIZE[2] ? this.tlb2m! : this.tlb1g!;
        const key = size === PAGE_SIZE ? Math.floor(gva / size) : Math.floor(gva / size) + (size === LEVEL_SIZE[2] ? KEY_2M : KEY_1G);
        const global = (lo & PTE_G) !== 0 && this.cr4Pge;
        // A 1 GiB page cached in a 2 MiB array ("smashed") keeps the 2 MiB piece it was reached through.
        const cSize = c === this.tlb2m && size === LEVEL_SIZE[3] ? LEVEL_SIZE[2]! : size;
        const cKey = cSize === size ? key : Math.floor(gva / cSize) + KEY_2M;
        c.fill(
          cKey,
          this.ctxTag,
          this.pcidTag,
          Math.floor(hpa / cSize) * (cSize * INV_PAGE_SIZE),
          (writeOk ? CP_WRITE_OK : 0) |
            (writable ? CP_WRITABLE : 0) |
            (us ? CP_USER : 0) |
            (nx || !exec ? CP_NX : 0) |
            (global ? CP_GLOBAL : 0),
          Math.floor(gpa / cSize) * cSize,
        );
      }
    }
    return XLATE_OK;
  }

  /** Sets A/D bits in a guest entry: a locked write to the guest table, which the nested dimension must allow. */
  private guestAdWrite(off: number, newLo: number, entryGpa: number, level: number): XlateResult {
    if (this.nested) {
      // The table page was reached by a read (NPT, or EPT without A/D): the write needs a writable nested leaf.
      if (!this.nWritable) return this.nestedWriteFault(entryGpa, level);
      if (!this.nDirtyOk) this.markNestedDirty(entryGpa);
    }
    if (off >= 0) this.mem.words[off] = newLo;
    this.stats.adWrites++;
    return XLATE_OK;
  }

  private guestFault(acc: number, bits: number, level: number, se: boolean): XlateResult {
    let ec = bits | (acc & (ACC_WRITE | ACC_USER));
    if ((acc & ACC_FETCH) !== 0 && (this.efeNxe || this.smep)) ec |= PFERR_FETCH;
    this.errorCode = ec;
    this.faultLevel = level;
    if (se) this.stats.guestPageFaults++;
    return XLATE_GUEST_PF;
  }

  /**
   * gpa -> hpa through EPT/NPT. Leaves the 4 KiB host frame in nPfnBase and the leaf's
   * properties in the n* fields. `forLevel` is the guest level whose table is being read (0: final).
   */
  private nestedTranslate(gpa: number, acc: number, why: number, forLevel: number, se: boolean): XlateResult {
    const mem = this.mem;
    const stats = this.stats;
    const gfn = Math.floor(gpa * INV_PAGE_SIZE);
    const ntlb = this.nestedTlb;
    if (se && ntlb !== null) {
      const i = ntlb.lookup(gfn, this.eptTag, 0);
      if (i >= 0) {
        const p = ntlb.perm[i]!;
        if (((acc & ACC_WRITE) === 0 || (p & CP_WRITE_OK) !== 0) && ((acc & ACC_FETCH) === 0 || (p & CP_EXEC) !== 0)) {
          stats.nestedTlbHits++;
          this.nPfnBase = ntlb.value[i]!;
          this.nLeafOff = -1;
          this.nWritable = (p & CP_WRITABLE) !== 0;
          this.nDirtyOk = (p & CP_WRITE_OK) !== 0;
          this.nExec = (p & CP_EXEC) !== 0;
          this.nSize = PAGE_SIZE;
          return XLATE_OK;
        }
      }
      stats.nestedTlbMisses++;
    }
    const isEpt = this.isEpt;
    const ad = this.nestedAd;
    const levels = this.nestedLevels;
    const log = this.log;
    let level = levels;
    let tableHpfn = this.nestedRoot;
    // EPT: AND of R/W/X; NPT: AND of RW and US, OR of NX.
    let r = 1;
    let w = 1;
    let x = 1;
    if (se && this.nestedPsc[2] !== null) {
      for (let l = 2; l <= levels; l++) {
        const c = this.nestedPsc[l]!;
        const i = c.lookup(Math.floor(gpa * INV_LEVEL_SIZE[l]!), this.eptTag, 0);
        if (i >= 0) {
          stats.nestedPscHits++;
          level = l - 1;
          tableHpfn = c.value[i]!;
          const p = c.perm[i]!;
          r = p & CP_USER ? 1 : 0; // EPT: R; NPT: US
          w = p & CP_WRITABLE ? 1 : 0;
          x = p & CP_EXEC ? 1 : 0;
          break;
        }
      }
      if (level === levels) stats.nestedPscMisses++;
    }
    let lo = 0;
    let hi = 0;
    let off = -1;
    const slots = mem.tableSlot;
    const words = mem.words;
    const rsvdHi = this.rsvdHi;
    for (;;) {
      const idx = tableIndexOf(gpa, level);
      const slot = tableHpfn >= 0 ? slots[tableHpfn]! - 1 : -1;
      if (slot >= 0) {
        off = (slot << 10) | (idx << 1);
        lo = words[off]!;
        hi = words[off + 1]!;
      } else {
        off = -1;
        lo = 0;
        hi = 0;
      }
      if (se) stats.nestedTableReads++;
      if (log !== null) log.push(REF_NESTED_TABLE, level, forLevel, tableHpfn * PAGE_SIZE + idx * 8, gpa, lo, hi);
      let leaf: boolean;
      if (isEpt) {
        if ((lo & 7) === 0) return this.eptViolation(gpa, acc, why, 0, level, se);
        leaf = level === 1 || ((lo & EPT_PS) !== 0 && level <= 3);
        if ((lo & 3) === 2 || (hi & rsvdHi) !== 0 || (leaf ? level > 1 || (0x8c >>> ((lo >>> 3) & 7)) & 1 : lo & eptNonLeafRsvdLo(level))) {
          const why2 = this.eptMisconfigReason(lo, hi, level, leaf);
          if (why2 !== "") return this.eptMisconfig(gpa, level, why2, se);
        }
        r &= lo & 1;
        w &= (lo >>> 1) & 1;
        x &= (lo >>> 2) & 1;
      } else {
        if ((lo & PTE_P) === 0) return this.npf(gpa, acc, why, 0, level, se);
        leaf = level === 1 || ((lo & PTE_PS) !== 0 && level <= 3);
        if ((hi & rsvdHi) !== 0 || (level >= 4 && (lo & PTE_PS) !== 0) || (leaf && (lo & hugeRsvdLoMask(level)) !== 0)) {
          return this.npf(gpa, acc, why, PFERR_PRESENT | PFERR_RSVD, level, se);
        }
        w &= (lo >>> 1) & 1;
        r &= (lo >>> 2) & 1; // nested walks are user accesses: US must be set all the way
        x &= hi >>> 31 ? 0 : 1;
      }
      if (leaf) break;
      const aBit = isEpt ? EPT_A : PTE_A;
      if (se && ad && (lo & aBit) === 0) {
        words[off] = lo | aBit;
        stats.nestedAdWrites++;
      }
      tableHpfn = entryFrame(lo, hi);
      level--;
      if (se && this.nestedPsc[level + 1] !== null) {
        this.nestedPsc[level + 1]!.fill(
          Math.floor(gpa * INV_LEVEL_SIZE[level + 1]!),
          this.eptTag,
          0,
          tableHpfn,
          (r ? CP_USER : 0) | (w ? CP_WRITABLE : 0) | (x ? CP_EXEC : 0),
        );
      }
    }
    // Leaf permissions.
    const write = (acc & ACC_WRITE) !== 0;
    const fetch = (acc & ACC_FETCH) !== 0;
    if (isEpt) {
      if ((write && !w) || (fetch && !x) || (!write && !fetch && !r))
        return this.eptViolation(gpa, acc, why, (r ? EPTQ_READABLE : 0) | (w ? EPTQ_WRITABLE : 0) | (x ? EPTQ_EXECUTABLE : 0), level, se);
    } else if (!r || (write && !w) || (fetch && !x)) {
      return this.npf(gpa, acc, why, PFERR_PRESENT, level, se);
    }
    const aBit = isEpt ? EPT_A : PTE_A;
    const dBit = isEpt ? EPT_D : PTE_D;
    if (se && ad) {
      const newLo = lo | aBit | (write ? dBit : 0);
      if (newLo !== lo) {
        words[off] = newLo;
        stats.nestedAdWrites++;
        lo = newLo;
      }
    }
    const size = LEVEL_SIZE[level]!;
    const frameLo = !isEpt && level > 1 ? lo & ~PTE_PAT_HUGE : lo;
    const base = (frameLo >>> 12) + (hi & 0xfffff) * 0x100000;
    this.nPfnBase = level === 1 ? base : base + (gfn - Math.floor(gfn * INV_LEVEL_SIZE[level]! * PAGE_SIZE) * (size * INV_PAGE_SIZE));
    this.nLeafOff = off;
    this.nWritable = w === 1;
    this.nDirtyOk = w === 1 && (!ad || (lo & dBit) !== 0);
    this.nExec = x === 1;
    this.nSize = size;
    if (se && this.nestedTlb !== null) {
      this.nestedTlb.fill(
        gfn,
        this.eptTag,
        0,
        this.nPfnBase,
        (this.nDirtyOk ? CP_WRITE_OK : 0) | (w ? CP_WRITABLE : 0) | (x ? CP_EXEC : 0),
      );
    }
    return XLATE_OK;
  }

  /** Sets the dirty bit of the nested leaf that maps `gpa` (a guest A/D update is a write). */
  private markNestedDirty(gpa: number): void {
    if (this.nLeafOff < 0) {
      // Came from the nested TLB: find the leaf without side effects.
      const log = this.log;
      this.log = null;
      this.nestedTranslate(gpa, ACC_READ, NESTED_FOR_PHYS, 0, false);
      this.log = log;
    }
    const off = this.nLeafOff;
    if (off < 0) return;
    const dBit = this.isEpt ? EPT_D : PTE_D;
    const aBit = this.isEpt ? EPT_A : PTE_A;
    if (this.isEpt && !this.config.eptAd) return;
    const lo = this.mem.words[off]!;
    if ((lo & dBit) === 0) {
      this.mem.words[off] = lo | dBit | aBit;
      this.stats.nestedAdWrites++;
    }
    this.nDirtyOk = true;
    if (this.nestedTlb !== null) {
      const gfn = Math.floor(gpa * INV_PAGE_SIZE);
      const i = this.nestedTlb.peek(gfn, this.eptTag, 0);
      if (i >= 0) this.nestedTlb.perm[i] = this.nestedTlb.perm[i]! | CP_WRITE_OK;
    }
  }

  private nestedWriteFault(gpa: number, level: number): XlateResult {
    if (this.isEpt) return this.eptViolation(gpa, ACC_WRITE, NESTED_FOR_TABLE, EPTQ_READABLE, level, true);
    return this.npf(gpa, ACC_WRITE, NESTED_FOR_TABLE, PFERR_PRESENT, level, true);
  }

  private eptMisconfigReason(lo: number, hi: number, level: number, leaf: boolean): string {
    if ((lo & (EPT_R | EPT_W)) === EPT_W) return "write without read";
    if ((hi & this.rsvdHi) !== 0) return "address bits above MAXPHYADDR";
    if (leaf) {
      if (isReservedMemType((lo >>> 3) & 7)) return `reserved memory type ${(lo >>> 3) & 7}`;
      // EPT has no PAT bit: all frame bits below the page size are reserved in a huge leaf.
      if (level > 1 && (lo & (hugeRsvdLoMask(level) | 0x1000)) !== 0) return "unaligned huge-page frame";
    } else {
      if ((lo & eptNonLeafRsvdLo(level)) !== 0) return `reserved bits ${level >= 4 ? "7:3" : "6:3"} in a non-leaf entry`;
    }
    return "";
  }

  private eptViolation(gpa: number, acc: number, why: number, rwx: number, level: number, se: boolean): XlateResult {
    let q = rwx;
    if ((acc & ACC_WRITE) !== 0) q |= EPTQ_WRITE;
    else if ((acc & ACC_FETCH) !== 0) q |= EPTQ_FETCH;
    else q |= EPTQ_READ;
    if (why !== NESTED_FOR_PHYS) q |= EPTQ_GLA_VALID | (why === NESTED_FOR_FINAL ? EPTQ_GLA_FINAL : 0);
    this.exitQual = q;
    this.faultGpa = gpa;
    this.faultLevel = level;
    if (se) this.stats.eptViolations++;
    return XLATE_EPT_VIOLATION;
  }

  private eptMisconfig(gpa: number, level: number, reason: string, se: boolean): XlateResult {
    this.faultGpa = gpa;
    this.faultLevel = level;
    this.faultReason = reason;
    if (se) this.stats.eptMisconfigs++;
    return XLATE_EPT_MISCONFIG;
  }

  private npf(gpa: number, acc: number, why: number, bits: number, level: number, se: boolean): XlateResult {
    let ec = bits | PFERR_USER | (acc & (ACC_WRITE | ACC_FETCH));
    if (why === NESTED_FOR_FINAL) ec += NPF_FINAL;
    else if (why === NESTED_FOR_TABLE) ec += NPF_GUEST_TABLE;
    this.errorCode = ec;
    this.faultGpa = gpa;
    this.faultLevel = level;
    if (se) this.stats.npfs++;
    return XLATE_NPF;
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
    const vpidCtxs = this.ctxTagsWhere((vpid) => vpid === this.vpid);
    if (type === 0) {
      const ctx = this.ctxTag;
      const tag = this.pcidTagOf(ctx, pcid);
      this.dropAddress(gva, (c, p, g) => c === ctx && p === tag && !g);
      this.dropPsc((c, p) => c === ctx && p === tag);
    } else if (type === 1) {
      this.renewPcid(this.ctxTag, pcid);
    } else if (type === 2) {
      for (const k of vpidCtxs) this.renewCtx(k);
    } else {
      for (const k of vpidCtxs) this.pcidTags.delete(this.ctxTags.get(k)!);
      this.stats.contextFlushes++;
    }
    this.refreshTags();
  }

  /** INVVPID types 0 (address), 1 (single context), 2 (all contexts), 3 (single context, keep globals). */
  invvpid(type: 0 | 1 | 2 | 3, vpid: number, gva = 0): void {
    this.stats.invvpid++;
    const keys = this.ctxTagsWhere((v) => type === 2 || v === vpid);
    if (type === 0) {
      const tags = new Set(keys.map((k) => this.ctxTags.get(k)!));
      this.dropAddress(gva, (c) => tags.has(c));
      this.dropPsc((c) => tags.has(c));
    } else if (type === 3) {
      for (const k of keys) this.pcidTags.delete(this.ctxTags.get(k)!);
      this.stats.contextFlushes++;
    } else {
      for (const k of keys) this.renewCtx(k);
    }
    this.refreshTags();
  }

  /** INVEPT type 1 (single context: one EPTP) or 2 (global): guest-physical and combined mappings. */
  invept(type: 1 | 2, nestedRoot = this.nestedRoot): void {
    this.stats.invept++;
    for (const root of [...this.eptTags.keys()]) {
      if (type === 2 || root === nestedRoot) this.eptTags.delete(root);
    }
    for (const k of this.ctxTagsWhere((_v, root) => type === 2 || root === nestedRoot)) this.renewCtx(k);
    this.refreshTags();
  }

  /** CR4.PGE toggle: every entry of the current context, globals included. */
  flushAll(): void {
    this.renewCtx(this.ctxKey(this.vpid, this.nestedRoot));
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

  private dropAddress(gva: number, match: (ctx: number, pcid: number, global: boolean) => boolean): void {
    this.tlb4k?.invalidateKey(Math.floor(gva * INV_PAGE_SIZE), match);
    this.tlb2m?.invalidateKey(Math.floor(gva * INV_LEVEL_SIZE[2]!) + KEY_2M, match);
    this.tlb1g?.invalidateKey(Math.floor(gva * INV_LEVEL_SIZE[3]!) + KEY_1G, match);
    if (this.tlb1g === this.tlb2m) this.tlb2m?.invalidateKey(Math.floor(gva * INV_LEVEL_SIZE[2]!) + KEY_2M, match);
  }

  private dropPsc(match: (ctx: number, pcid: number, global: boolean) => boolean): void {
    for (const c of this.psc) c?.invalidateWhere(match);
  }

  private ctxKey(vpid: number, root: number): string {
    return `${vpid}:${root}`;
  }

  private ctxTagsWhere(pred: (vpid: number, root: number) => boolean): string[] {
    const out: string[] = [];
    for (const k of this.ctxTags.keys()) {
      const [v, r] = k.split(":").map(Number) as [number, number];
      if (pred(v, r)) out.push(k);
    }
    return out;
  }

  private renewCtx(key: string): void {
    const old = this.ctxTags.get(key);
    if (old !== undefined) this.pcidTags.delete(old);
    this.ctxTags.set(key, this.nextTag++);
    this.stats.contextFlushes++;
  }

  private renewPcid(ctx: number, pcid: number): void {
    let m = this.pcidTags.get(ctx);
    if (!m) {
      m = new Map();
      this.pcidTags.set(ctx, m);
    }
    m.set(pcid, this.nextTag++);
    this.stats.contextFlushes++;
    this.refreshTags();
  }

  private pcidTagOf(ctx: number, pcid: number): number {
    let m = this.pcidTags.get(ctx);
    if (!m) {
      m = new Map();
      this.pcidTags.set(ctx, m);
    }
    let t = m.get(pcid);
    if (t === undefined) {
      t = this.nextTag++;
      m.set(pcid, t);
    }
    return t;
  }

  private refreshTags(): void {
    const key = this.ctxKey(this.vpid, this.nested ? this.nestedRoot : -1);
    let ctx = this.ctxTags.get(key);
    if (ctx === undefined) {
      ctx = this.nextTag++;
      this.ctxTags.set(key, ctx);
    }
    this.ctxTag = ctx;
    this.pcidTag = this.pcidTagOf(ctx, this.pcid);
    let ept = this.eptTags.get(this.nestedRoot);
    if (ept === undefined) {
      ept = this.nextTag++;
      this.eptTags.set(this.nestedRoot, ept);
    }
    this.eptTag = ept;
  }
}

function pageOffset(addr: number): number {
  return addr - Math.floor(addr * INV_PAGE_SIZE) * PAGE_SIZE;
}

/** tableIndex() for the walkers (`&` on a double truncates it exactly with one instruction). */
function tableIndexOf(addr: number, level: number): number {
  return Math.floor(addr * INV_LEVEL_SIZE[level]!) & 511;
}

/**
 * The frame an entry points at, as an int32, or -1 when it lies beyond the 2^28 frames PhysMem
 * can hold (such an entry reads as zeroes). Integer-only: the walk's dependent chain is
 * entry -> frame -> table slot -> entry, and double arithmetic on it costs a third of a walk.
 */
function entryFrame(lo: number, hi: number): number {
  return (hi & 0xfff00) !== 0 ? -1 : (lo >>> 12) | ((hi & 0xff) << 20);
}
