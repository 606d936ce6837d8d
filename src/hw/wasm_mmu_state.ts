// SPDX-License-Identifier: MIT
// The state of a wasm-core MMU (wasm_mmu.ts), as mmu_state.ts is the JS Mmu's: one region of
// PhysMem's wasm memory laid out by src/hw/asm/mmu_state.ts (registers, results, walker scratch,
// counters, walk log) followed by its caches. Registers and results are accessors over that
// memory, so code written for the JS Mmu reads and writes them unchanged. The context tags
// (Maps, touched only by MOV to CR3 and invalidations) stay in JS, as in mmu_state.ts, and the
// current ones are written through to the core.

import { PAGE_SIZE } from "./addr.js";
import type { CacheGeometry } from "./assoc_cache.js";
import type { MmuConfig } from "./mmu_config.js";
import { PML_HEAD_INDEX } from "./mmu_defs.js";
import { type HwStats, newHwStats } from "./mmu_stats.js";
import type { PhysMem } from "./phys_mem.js";
import type { CoreFunctions, WasmCore } from "./wasm_core.js";
import type { CoreMemory } from "./wasm_memory.js";
import { ContextTags } from "./context_tags.js";
import type { WalkLog } from "./walk_log.js";
import { rsvdHiMask } from "./x86_pte.js";

/** The words of an EPT misconfiguration, by the core's MISCONFIG_* code (src/hw/asm/mmu_defs.ts); 8 + t: memory type t. */
const MISCONFIG_WORDS = [
  "",
  "write without read",
  "address bits above MAXPHYADDR",
  "unaligned huge-page frame",
  "reserved bits 7:3 in a non-leaf entry",
  "reserved bits 6:3 in a non-leaf entry",
];

function misconfigReason(code: number): string {
  return code >= 8 ? `reserved memory type ${code - 8}` : MISCONFIG_WORDS[code]!;
}

function checkGeometry(g: CacheGeometry): void {
  if (!Number.isInteger(g.sets) || g.sets < 1 || (g.sets & (g.sets - 1)) !== 0) {
    throw new RangeError(`cache sets must be a power of two, not ${g.sets}`);
  }
  if (!Number.isInteger(g.ways) || g.ways < 1 || g.ways > 128) throw new RangeError(`cache ways must be 1..128, not ${g.ways}`);
}

/** The caches of a config, in state order: 4K, 2M, 1G TLB, nested TLB, PSC 2..5, nested PSC 2..5 (null: none or shared). */
function cacheGeometries(c: MmuConfig): (CacheGeometry | "4k" | "2m" | null)[] {
  const t = c.tlb;
  const psc = (p: MmuConfig["psc"]) => (p ? [p.pde, p.pdpte, p.pml4e, p.pml5e] : [null, null, null, null]);
  const nested = c.paging !== "native";
  return [
    t ? t["4k"] : null,
    t ? (t["2m"] === "shared" ? "4k" : t["2m"]) : null,
    t ? (t["1g"] ?? "2m") : null,
    nested ? c.nestedTlb : null,
    ...psc(c.psc),
    ...psc(nested ? c.nestedPsc : null),
  ];
}

export class WasmMmuState {
  readonly config: MmuConfig;
  readonly stats: HwStats;
  /** Byte address of this MMU's state in the memory. */
  readonly state: number;
  protected readonly cm: CoreMemory;
  protected readonly core: WasmCore;
  protected readonly fn: CoreFunctions;
  private readonly layout: Record<string, number> = {};
  protected _log: WalkLog | null = null;
  /** Indices of the result fields in the memory's f64 and i32 views: read after every access. */
  private readonly iHpa: number;
  private readonly iGpa: number;
  private readonly iPageSize: number;
  private readonly iErrorCode: number;
  private readonly iFaultGva: number;
  private readonly iFaultGpa: number;
  private readonly iExitQual: number;
  private readonly iFaultLevel: number;

  // --- architectural state kept in JS (it selects tags; the core sees the tags) ---
  pcid = 0;
  pcide = false;
  vpid = 1;

  // --- caches: byte addresses in the memory, 0 for none; tlb2m/tlb1g may equal tlb4k/tlb2m ---
  readonly tlb4k: number;
  readonly tlb2m: number;
  readonly tlb1g: number;
  readonly nestedTlb: number;
  /** Indexed by level 2..5, as mmu_state.ts's psc and nestedPsc. */
  readonly psc: number[];
  readonly nestedPsc: number[];

  // --- context tags (context_tags.ts): never reused, renewed to flush; the current ones copied out ---
  readonly tags: ContextTags;
  ctxTag = 0;
  pcidTag = 0;
  eptTag = 0;

  // --- per-config constants ---
  readonly nested: boolean;
  readonly isEpt: boolean;
  readonly rsvdHi: number;
  readonly nestedAd: boolean;
  readonly nestedLevels: number;

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
    this.cm = mem.wasm;
    this.core = this.cm.core();
    this.fn = this.core.fn;
    const caches = this.allocate(config);
    this.state = caches[12]!;
    [this.tlb4k, this.tlb2m, this.tlb1g, this.nestedTlb] = caches;
    this.psc = [0, 0, ...caches.slice(4, 8)];
    this.nestedPsc = [0, 0, ...caches.slice(8, 12)];
    this.stats = this.statsView();
    this.tags = new ContextTags(this.stats);
    const f64At = (name: string) => this.f64Index(this.field(name));
    const i32At = (name: string) => this.field(name) >>> 2;
    this.iHpa = f64At("S_hpa");
    this.iGpa = f64At("S_gpa");
    this.iPageSize = f64At("S_pageSize");
    this.iErrorCode = f64At("S_errorCode");
    this.iFaultGva = f64At("S_faultGva");
    this.iFaultGpa = f64At("S_faultGpa");
    this.iExitQual = i32At("S_exitQual");
    this.iFaultLevel = i32At("S_faultLevel");
    this.setI32("S_nested", this.nested ? 1 : 0);
    this.setI32("S_isEpt", this.isEpt ? 1 : 0);
    this.setI32("S_eptAd", config.eptAd ? 1 : 0);
    this.setI32("S_nestedAd", this.nestedAd ? 1 : 0);
    this.setI32("S_guestLevels", config.guestLevels);
    this.setI32("S_nestedLevels", config.nestedLevels);
    this.setI32("S_rsvdHi", this.rsvdHi | 0);
    this.setI32("S_pmlIndex", PML_HEAD_INDEX);
    this.cm.f64[this.iPageSize] = PAGE_SIZE;
    this.cr3Frame = -1;
    this.nestedRoot = -1;
    this.cr0Wp = true;
    this.efeNxe = true;
    this.cr4Pge = true;
    this.fn.computeTlbPerms(this.state);
    this.refreshTags();
  }

  /** The state region and every cache in one allocation; returns the 12 cache addresses, then the state's. */
  private allocate(config: MmuConfig): number[] {
    const geoms = cacheGeometries(config);
    let bytes = this.core.constant("MMU_BYTES");
    for (const g of geoms) {
      if (g !== null && typeof g === "object") {
        checkGeometry(g);
        bytes += this.fn.cacheBytes(g.sets, g.ways);
      }
    }
    const state = this.cm.alloc(bytes);
    let p = state + this.core.constant("MMU_BYTES");
    const at: number[] = [];
    for (const g of geoms) {
      if (g === null) at.push(0);
      else if (g === "4k") at.push(at[0]!);
      else if (g === "2m") at.push(at[1]!);
      else {
        this.fn.cacheInit(p, g.sets, g.ways);
        at.push(p);
        p += this.fn.cacheBytes(g.sets, g.ways);
      }
    }
    const fields = ["S_tlb4k", "S_tlb2m", "S_tlb1g", "S_nestedTlb"];
    for (let i = 0; i < 4; i++) this.cm.i32[(state + this.core.constant(fields[i]!)) >>> 2] = at[i]!;
    for (let i = 0; i < 4; i++) {
      this.cm.i32[(state + this.core.constant("S_psc2") + 4 * i) >>> 2] = at[4 + i]!;
      this.cm.i32[(state + this.core.constant("S_nestedPsc2") + 4 * i) >>> 2] = at[8 + i]!;
    }
    return [...at, state];
  }

  /** HwStats whose counters are the core's: the same fields, methods and JSON, read and written in place. */
  private statsView(): HwStats {
    const stats = newHwStats();
    const base = this.state + this.core.constant("STATS");
    for (const name of Object.keys(stats)) {
      const i = this.f64Index(base + this.core.constant(`H_${name}`));
      Object.defineProperty(stats, name, {
        enumerable: true,
        get: () => this.cm.f64[i]!,
        set: (v: number) => {
          this.cm.f64[i] = v;
        },
      });
    }
    return stats;
  }

  private f64Index(byteOffset: number): number {
    if (byteOffset % 8 !== 0) throw new Error(`the wasm core's f64 at ${byteOffset} is not 8-aligned`);
    return byteOffset / 8;
  }

  /** Index of a state field in the memory's f64 (or, /2, i32) view. */
  protected field(name: string): number {
    let i = this.layout[name];
    if (i === undefined) {
      i = this.state + this.core.constant(name);
      this.layout[name] = i;
    }
    return i;
  }
  protected i32(name: string): number {
    return this.cm.i32[this.field(name) >>> 2]!;
  }
  protected setI32(name: string, v: number): void {
    this.cm.i32[this.field(name) >>> 2] = v;
  }

  // --- architectural state in the core ---
  /** An i64 in the core (a guest frame may pass 2^32), as two i32 halves. */
  get cr3Frame(): number {
    const i = this.field("S_cr3Frame") >>> 2;
    return this.cm.i32[i + 1]! * 2 ** 32 + (this.cm.i32[i]! >>> 0);
  }
  set cr3Frame(v: number) {
    const i = this.field("S_cr3Frame") >>> 2;
    this.cm.i32[i] = v | 0;
    this.cm.i32[i + 1] = Math.floor(v / 2 ** 32);
  }
  get cr0Wp(): boolean {
    return this.i32("S_cr0Wp") !== 0;
  }
  set cr0Wp(v: boolean) {
    this.setI32("S_cr0Wp", v ? 1 : 0);
  }
  get efeNxe(): boolean {
    return this.i32("S_efeNxe") !== 0;
  }
  set efeNxe(v: boolean) {
    this.setI32("S_efeNxe", v ? 1 : 0);
  }
  get cr4Pge(): boolean {
    return this.i32("S_cr4Pge") !== 0;
  }
  set cr4Pge(v: boolean) {
    this.setI32("S_cr4Pge", v ? 1 : 0);
  }
  /** CR4.SMEP and CR4.SMAP; setting them recomputes the TLB permission tables. */
  get smep(): boolean {
    return this.i32("S_smep") !== 0;
  }
  set smep(v: boolean) {
    this.setI32("S_smep", v ? 1 : 0);
    this.fn.computeTlbPerms(this.state);
  }
  get smap(): boolean {
    return this.i32("S_smap") !== 0;
  }
  set smap(v: boolean) {
    this.setI32("S_smap", v ? 1 : 0);
    this.fn.computeTlbPerms(this.state);
  }
  /** EPTP / nCR3 root host frame (nested paging only). */
  get nestedRoot(): number {
    return this.i32("S_nestedRoot");
  }
  set nestedRoot(v: number) {
    this.setI32("S_nestedRoot", v);
  }

  /** The "enable PML" VM-execution control, GUEST_PML_INDEX and the log (mmu_state.ts). */
  get pmlOn(): boolean {
    return this.i32("S_pmlOn") !== 0;
  }
  set pmlOn(v: boolean) {
    this.setI32("S_pmlOn", v ? 1 : 0);
  }
  get pmlIndex(): number {
    return this.i32("S_pmlIndex");
  }
  set pmlIndex(v: number) {
    this.setI32("S_pmlIndex", v);
  }
  pmlEntry(i: number): number {
    return this.cm.f64[this.f64Index(this.state + this.core.constant("PML") + 8 * i)]!;
  }

  // --- results of the last translation ---
  get hpa(): number {
    return this.cm.f64[this.iHpa]!;
  }
  set hpa(v: number) {
    this.cm.f64[this.iHpa] = v;
  }
  get gpa(): number {
    return this.cm.f64[this.iGpa]!;
  }
  set gpa(v: number) {
    this.cm.f64[this.iGpa] = v;
  }
  get pageSize(): number {
    return this.cm.f64[this.iPageSize]!;
  }
  set pageSize(v: number) {
    this.cm.f64[this.iPageSize] = v;
  }
  get errorCode(): number {
    return this.cm.f64[this.iErrorCode]!;
  }
  set errorCode(v: number) {
    this.cm.f64[this.iErrorCode] = v;
  }
  get exitQual(): number {
    return this.cm.i32[this.iExitQual]!;
  }
  set exitQual(v: number) {
    this.cm.i32[this.iExitQual] = v;
  }
  get faultGva(): number {
    return this.cm.f64[this.iFaultGva]!;
  }
  set faultGva(v: number) {
    this.cm.f64[this.iFaultGva] = v;
  }
  get faultGpa(): number {
    return this.cm.f64[this.iFaultGpa]!;
  }
  set faultGpa(v: number) {
    this.cm.f64[this.iFaultGpa] = v;
  }
  get faultLevel(): number {
    return this.cm.i32[this.iFaultLevel]!;
  }
  set faultLevel(v: number) {
    this.cm.i32[this.iFaultLevel] = v;
  }
  get faultReason(): string {
    return misconfigReason(this.i32("S_faultReason"));
  }

  /** Set to a WalkLog to record every reference in order. */
  get log(): WalkLog | null {
    return this._log;
  }
  set log(l: WalkLog | null) {
    this._log = l;
    this.setI32("S_logOn", l === null ? 0 : 1);
    this.setI32("S_logCount", 0);
  }

  /** Moves the references the core recorded into the log. */
  protected drainLog(log: WalkLog): void {
    const n = this.i32("S_logCount");
    const step = this.core.constant("LOG_STEP");
    let e = this.state + this.core.constant("LOG");
    const c = this.core;
    for (let k = 0; k < n; k++, e += step) {
      const i32 = this.cm.i32;
      const f64 = this.cm.f64;
      log.push(
        i32[(e + c.constant("L_kind")) >>> 2]! as 0 | 1 | 2,
        i32[(e + c.constant("L_level")) >>> 2]!,
        i32[(e + c.constant("L_forLevel")) >>> 2]!,
        f64[this.f64Index(e + c.constant("L_hpa"))]!,
        f64[this.f64Index(e + c.constant("L_gpa"))]!,
        this.cm.u32[(e + c.constant("L_lo")) >>> 2]!,
        this.cm.u32[(e + c.constant("L_hi")) >>> 2]!,
      );
    }
    this.setI32("S_logCount", 0);
  }

  // ---------------------------------------------------------------- context tags (context_tags.ts)

  renewPcid(ctx: number, pcid: number): void {
    this.tags.renewPcid(ctx, pcid);
    this.refreshTags();
  }

  /** Selects the tags of the current VPID, root and PCID, and writes them to the core. */
  refreshTags(): void {
    const t = this.tags;
    t.select(this.vpid, this.nested, this.nestedRoot, this.pcid);
    this.ctxTag = t.ctx;
    this.pcidTag = t.pcid;
    this.eptTag = t.ept;
    this.setI32("S_ctxTag", this.ctxTag);
    this.setI32("S_pcidTag", this.pcidTag);
    this.setI32("S_eptTag", this.eptTag);
  }
}
