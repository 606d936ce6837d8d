// SPDX-License-Identifier: MIT
// An Mmu whose translation runs in the WebAssembly core (src/hw/asm/): the same TLBs,
// paging-structure caches, nested TLB, walks, counters, fields and log as mmu.ts, which stays
// the reference (wasm_mmu.test.ts drives both with the same random machines and compares
// everything). This file is the entry points, the batched loop, and the instructions that
// change the context or invalidate, over the caches in wasm memory; wasm_mmu_state.ts is the state.

import type { AssocCacheSnapshot } from "./assoc_cache.js";
import { INV_LEVEL_SIZE, INV_PAGE_SIZE } from "./addr.js";
import { XLATE_OK, type XlateResult } from "./mmu_defs.js";
import { KEY_1G, KEY_2M } from "./mmu_state.js";
import type { PhysMem } from "./phys_mem.js";
import type { CoreMemory } from "./wasm_memory.js";
import { WasmMmuState } from "./wasm_mmu_state.js";

/**
 * A slice of accesses in wasm memory for WasmMmu.accessBatch: gva (f64), access kind (u8, ACC_*
 * bits) and, filled by the core, hpa and gpa (f64). The views are re-taken after the memory grows.
 */
export class XlateBatch {
  private readonly cm: CoreMemory;
  /** Byte addresses of the three arrays. */
  readonly gvaAt: number;
  readonly accAt: number;
  readonly hpaAt: number;
  readonly gpaAt: number;
  private buffer: ArrayBuffer | null = null;
  private gvaView = new Float64Array(0);
  private accView = new Uint8Array(0);
  private hpaView = new Float64Array(0);
  private gpaView = new Float64Array(0);

  constructor(
    mem: PhysMem,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`a batch holds 1 or more accesses, not ${capacity}`);
    this.cm = mem.wasm;
    this.gvaAt = this.cm.alloc(capacity * 25);
    this.hpaAt = this.gvaAt + capacity * 8;
    this.gpaAt = this.hpaAt + capacity * 8;
    this.accAt = this.gpaAt + capacity * 8;
  }

  /** The core memory the batch is in. */
  get coreMemory(): CoreMemory {
    return this.cm;
  }

  private views(): void {
    const b = this.cm.memory.buffer;
    if (b === this.buffer) return;
    this.buffer = b;
    this.gvaView = new Float64Array(b, this.gvaAt, this.capacity);
    this.hpaView = new Float64Array(b, this.hpaAt, this.capacity);
    this.gpaView = new Float64Array(b, this.gpaAt, this.capacity);
    this.accView = new Uint8Array(b, this.accAt, this.capacity);
  }
  get gva(): Float64Array {
    this.views();
    return this.gvaView;
  }
  get acc(): Uint8Array {
    this.views();
    return this.accView;
  }
  get hpa(): Float64Array {
    this.views();
    return this.hpaView;
  }
  /** The gpa each translated access reached (its gva natively). */
  get gpa(): Float64Array {
    this.views();
    return this.gpaView;
  }
}

export class WasmMmu extends WasmMmuState {
  // ---------------------------------------------------------------- translation

  /** Translates `gva` for an access of kind `acc` (ACC_* bits) as the hardware does (Mmu.access). */
  access(gva: number, acc: number): XlateResult {
    const r = this.fn.access(this.state, gva, acc) as XlateResult;
    if (this._log !== null) this.drainLog(this._log);
    return r;
  }

  /** The translation the tables give now, with no side effect (a log still records it). */
  probe(gva: number, acc: number): XlateResult {
    const r = this.fn.probe(this.state, gva, acc) as XlateResult;
    if (this._log !== null) this.drainLog(this._log);
    return r;
  }

  /** Translates a guest-physical address through EPT/NPT only. */
  accessPhys(gpa: number, acc: number): XlateResult {
    const r = this.fn.accessPhys(this.state, gpa, acc) as XlateResult;
    if (this._log !== null) this.drainLog(this._log);
    return r;
  }

  probePhys(gpa: number, acc: number): XlateResult {
    const r = this.fn.probePhys(this.state, gpa, acc) as XlateResult;
    if (this._log !== null) this.drainLog(this._log);
    return r;
  }

  /**
   * Translates the batch's accesses [start, end) in one call into the core, each hpa into
   * `b.hpa`, and returns the index of the first access that did not translate (`end` if all
   * did). That access's fault is in the fields, counted, as access() leaves it, and its result
   * in batchResult. With a log attached, every access is still logged.
   */
  accessBatch(b: XlateBatch, start: number, end: number): number {
    if (!(start >= 0 && start <= end && end <= b.capacity)) throw new RangeError(`batch slice [${start}, ${end}) of ${b.capacity}`);
    if (this.log !== null) {
      for (let i = start; i < end; i++) {
        const r = this.access(b.gva[i]!, b.acc[i]!);
        if (r !== XLATE_OK) {
          this.cm.i32[this.batchResultIndex()] = r;
          return i;
        }
        b.hpa[i] = this.hpa;
        b.gpa[i] = this.gpa;
      }
      return end;
    }
    const at = start * 8;
    return start + this.fn.accessBatch(this.state, b.gvaAt + at, b.accAt + start, b.hpaAt + at, b.gpaAt + at, end - start);
  }

  /** The result of the access that stopped the last accessBatch() short of its end. */
  get batchResult(): XlateResult {
    return this.cm.i32[this.batchResultIndex()] as XlateResult;
  }

  private iBatchResult = -1;
  private batchResultIndex(): number {
    if (this.iBatchResult < 0) this.iBatchResult = (this.state + this.core.constant("S_batchResult")) >>> 2;
    return this.iBatchResult;
  }

  // ---------------------------------------------------------------- context and invalidation (mmu.ts)

  setNestedContext(vpid: number, nestedRoot: number): void {
    this.vpid = vpid;
    this.nestedRoot = nestedRoot;
    this.refreshTags();
  }

  loadCr3(rootFrame: number, pcid = 0, noFlush = false): void {
    this.stats.cr3Loads++;
    this.cr3Frame = rootFrame;
    this.pcid = this.pcide ? pcid & 0xfff : 0;
    this.refreshTags();
    if (!(this.pcide && noFlush)) this.renewPcid(this.ctxTag, this.pcid);
  }

  invlpg(gva: number): void {
    this.stats.invlpg++;
    this.dropAddress(gva, this.core.constant("M_LIVE"), this.ctxTag, this.pcidTag);
    this.dropPsc(this.core.constant("M_PCID"), this.ctxTag, this.pcidTag);
  }

  invpcid(type: 0 | 1 | 2 | 3, pcid = 0, gva = 0): void {
    this.stats.invpcid++;
    this.tags.invpcid(type, this.vpid, this.ctxTag, pcid, (ctx, tag) => {
      this.dropAddress(gva, this.core.constant("M_PCID_LOCAL"), ctx, tag);
      this.dropPsc(this.core.constant("M_PCID"), ctx, tag);
    });
    this.refreshTags();
  }

  invvpid(type: 0 | 1 | 2 | 3, vpid: number, gva = 0): void {
    this.stats.invvpid++;
    this.tags.invvpid(type, vpid, (tags) => {
      for (const tag of tags) {
        this.dropAddress(gva, this.core.constant("M_CTX"), tag, 0);
        this.dropPsc(this.core.constant("M_CTX"), tag, 0);
      }
    });
    this.refreshTags();
  }

  invept(type: 1 | 2, nestedRoot = this.nestedRoot): void {
    this.stats.invept++;
    this.tags.invept(type, nestedRoot);
    this.refreshTags();
  }

  flushAll(): void {
    this.tags.renewCtx(this.tags.key(this.vpid, this.nestedRoot));
    this.refreshTags();
  }

  tlbLiveEntries(): number {
    let n = 0;
    for (const c of new Set([this.tlb4k, this.tlb2m, this.tlb1g])) {
      if (c !== 0) n += this.fn.countValid(c, this.core.constant("M_LIVE"), this.ctxTag, this.pcidTag);
    }
    return n;
  }

  private dropAddress(gva: number, mode: number, ctx: number, pcid: number): void {
    const fn = this.fn;
    if (this.tlb4k !== 0) fn.invalidateKey(this.tlb4k, Math.floor(gva * INV_PAGE_SIZE), mode, ctx, pcid);
    if (this.tlb2m !== 0) fn.invalidateKey(this.tlb2m, Math.floor(gva * INV_LEVEL_SIZE[2]!) + KEY_2M, mode, ctx, pcid);
    if (this.tlb1g !== 0) fn.invalidateKey(this.tlb1g, Math.floor(gva * INV_LEVEL_SIZE[3]!) + KEY_1G, mode, ctx, pcid);
  }

  private dropPsc(mode: number, ctx: number, pcid: number): void {
    for (const c of this.psc) if (c !== 0) this.fn.invalidateWhere(c, mode, ctx, pcid);
  }

  /** A copy of the cache at `cache` (one of tlb4k ... nestedPsc), in AssocCache.snapshot()'s shape. */
  cacheSnapshot(cache: number): AssocCacheSnapshot {
    const c = this.core;
    const i32 = this.cm.i32;
    const f64 = this.cm.f64;
    // Addresses are unsigned: above 2 GiB (a large host's per-frame arrays below) an i32 read of one is negative.
    const u32 = this.cm.u32;
    const n = i32[(cache + c.constant("C_entries")) >>> 2]!;
    const ent = u32[(cache + c.constant("C_ent")) >>> 2]!;
    const size = c.constant("C_entryBytes");
    const stamps = u32[(cache + c.constant("C_stamp")) >>> 2]! / 8;
    /** Field `name` of every entry record, into a typed array of its kind. */
    const field = <T extends Float64Array | Int32Array>(name: string, out: T, view: Float64Array | Int32Array): T => {
      const at = ent + c.constant(name);
      const per = view.BYTES_PER_ELEMENT;
      for (let i = 0; i < n; i++) out[i] = view[(at + i * size) / per]!;
      return out;
    };
    return {
      key: field("E_key", new Float64Array(n), f64),
      ctx: field("E_ctx", new Int32Array(n), i32),
      pcid: field("E_pcid", new Int32Array(n), i32),
      value: field("E_value", new Float64Array(n), f64),
      aux: field("E_aux", new Float64Array(n), f64),
      perm: field("E_perm", new Int32Array(n), i32),
      stamp: f64.slice(stamps, stamps + n),
      clock: f64[(cache + c.constant("C_clock")) / 8]!,
    };
  }
}
