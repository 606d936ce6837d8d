// SPDX-License-Identifier: MIT
// A set-associative cache of translations, struct-of-arrays, with LRU replacement.
// TLBs, paging-structure caches and the nested TLB are all built from it.
//
// An entry matches a lookup when its key matches, its context tag equals the current one,
// and its PCID tag equals the current one or the entry is global. Tag 0 marks an empty
// entry; tags are never reused, so renewing a context's tag flushes it without a scan.

/** Entry permission bits kept beside the translation. */
export const CP_WRITE_OK = 1 << 0; // a write may complete from the cache (writable and already dirty)
export const CP_WRITABLE = 1 << 1; // writable (D may still need setting)
export const CP_USER = 1 << 2;
export const CP_NX = 1 << 3;
export const CP_GLOBAL = 1 << 4;
export const CP_EXEC = 1 << 5; // nested (EPT X) executable
/** Guest paging-structure caches: the nested leaf mapping the next table is writable / already dirty. */
export const CP_NTABLE_WRITABLE = 1 << 6;
export const CP_NTABLE_DIRTY = 1 << 7;

export interface CacheGeometry {
  sets: number;
  ways: number;
}

export class AssocCache {
  readonly sets: number;
  readonly ways: number;
  readonly setMask: number;
  /** Most recently used way of each set: probed first (a way predictor; it changes no outcome). */
  private readonly mru: Int32Array;
  readonly key: Float64Array;
  readonly ctx: Int32Array;
  readonly pcid: Int32Array;
  readonly value: Float64Array;
  /** A second value: the guest frame of a cached table, or the gpa frame of a combined translation. */
  readonly aux: Float64Array;
  readonly perm: Int32Array;
  /** LRU stamps from the clock; 0 for an empty entry (invalidation clears it with the context). */
  readonly stamp: Float64Array;
  private clock = 0;

  constructor(g: CacheGeometry) {
    if (!Number.isInteger(g.sets) || g.sets < 1 || (g.sets & (g.sets - 1)) !== 0) {
      throw new RangeError(`cache sets must be a power of two, not ${g.sets}`);
    }
    if (!Number.isInteger(g.ways) || g.ways < 1 || g.ways > 128) throw new RangeError(`cache ways must be 1..128, not ${g.ways}`);
    this.sets = g.sets;
    this.ways = g.ways;
    this.setMask = g.sets - 1;
    this.mru = new Int32Array(g.sets);
    const n = g.sets * g.ways;
    this.key = new Float64Array(n);
    this.ctx = new Int32Array(n);
    this.pcid = new Int32Array(n);
    this.value = new Float64Array(n);
    this.aux = new Float64Array(n);
    this.perm = new Int32Array(n);
    this.stamp = new Float64Array(n);
  }

  get entries(): number {
    return this.sets * this.ways;
  }

  /** First entry of the set `key` maps to (`&` truncates a double key exactly in one instruction). */
  setBase(key: number): number {
    return (key & this.setMask) * this.ways;
  }

  /** Index of the matching entry, or -1. Counts a hit or a miss and refreshes LRU on a hit. */
  lookup(key: number, ctx: number, pcid: number): number {
    const set = key & this.setMask;
    const base = set * this.ways;
    let i = base + this.mru[set]!;
    if (this.key[i] === key && this.ctx[i] === ctx && (this.pcid[i] === pcid || (this.perm[i]! & CP_GLOBAL) !== 0)) {
      this.stamp[i] = ++this.clock;
      return i;
    }
    const end = base + this.ways;
    for (i = base; i < end; i++) {
      if (this.key[i] === key && this.ctx[i] === ctx && (this.pcid[i] === pcid || (this.perm[i]! & CP_GLOBAL) !== 0)) {
        this.stamp[i] = ++this.clock;
        this.mru[set] = i - base;
        return i;
      }
    }
    return -1;
  }

  /** Like lookup, but changes nothing (no LRU update, no counting). */
  peek(key: number, ctx: number, pcid: number): number {
    const base = this.setBase(key);
    for (let i = base; i < base + this.ways; i++) {
      if (this.key[i] === key && this.ctx[i] === ctx && (this.pcid[i] === pcid || (this.perm[i]! & CP_GLOBAL) !== 0)) return i;
    }
    return -1;
  }

  /** Inserts or replaces the entry for (key, ctx, pcid); evicts the least recently used way. */
  fill(key: number, ctx: number, pcid: number, value: number, perm: number, aux = -1): number {
    const base = this.setBase(key);
    let victim = base;
    let oldest = Number.POSITIVE_INFINITY;
    for (let i = base; i < base + this.ways; i++) {
      if (this.key[i] === key && this.ctx[i] === ctx && this.pcid[i] === pcid) {
        victim = i;
        break;
      }
      if (this.ctx[i] === 0) {
        victim = i;
        oldest = -1;
      } else if (this.stamp[i]! < oldest) {
        victim = i;
        oldest = this.stamp[i]!;
      }
    }
    this.key[victim] = key;
    this.ctx[victim] = ctx;
    this.pcid[victim] = pcid;
    this.value[victim] = value;
    this.aux[victim] = aux;
    this.perm[victim] = perm;
    this.stamp[victim] = ++this.clock;
    this.mru[key & this.setMask] = victim - base;
    return victim;
  }

  /** Drops the entries for `key` that `match` selects. */
  invalidateKey(key: number, match: (ctx: number, pcid: number, global: boolean) => boolean): number {
    const base = this.setBase(key);
    let n = 0;
    for (let i = base; i < base + this.ways; i++) {
      if (this.ctx[i] !== 0 && this.key[i] === key && match(this.ctx[i]!, this.pcid[i]!, (this.perm[i]! & CP_GLOBAL) !== 0)) {
        this.ctx[i] = 0;
        this.stamp[i] = 0;
        n++;
      }
    }
    return n;
  }

  /** Drops every entry `match` selects. A scan: only for the tiny paging-structure caches and tests. */
  invalidateWhere(match: (ctx: number, pcid: number, global: boolean) => boolean): number {
    let n = 0;
    for (let i = 0; i < this.ctx.length; i++) {
      if (this.ctx[i] !== 0 && match(this.ctx[i]!, this.pcid[i]!, (this.perm[i]! & CP_GLOBAL) !== 0)) {
        this.ctx[i] = 0;
        this.stamp[i] = 0;
        n++;
      }
    }
    return n;
  }

  /** Entries whose tags are still current according to `live` (for reports and the visualizer). */
  countValid(live: (ctx: number, pcid: number, global: boolean) => boolean): number {
    let n = 0;
    for (let i = 0; i < this.ctx.length; i++) {
      if (this.ctx[i] !== 0 && live(this.ctx[i]!, this.pcid[i]!, (this.perm[i]! & CP_GLOBAL) !== 0)) n++;
    }
    return n;
  }

  clear(): void {
    this.ctx.fill(0);
    this.stamp.fill(0);
  }

  snapshot(): AssocCacheSnapshot {
    return {
      key: this.key.slice(),
      ctx: this.ctx.slice(),
      pcid: this.pcid.slice(),
      value: this.value.slice(),
      aux: this.aux.slice(),
      perm: this.perm.slice(),
      stamp: this.stamp.slice(),
      clock: this.clock,
    };
  }

  restore(s: AssocCacheSnapshot): void {
    this.key.set(s.key);
    this.ctx.set(s.ctx);
    this.pcid.set(s.pcid);
    this.value.set(s.value);
    this.aux.set(s.aux);
    this.perm.set(s.perm);
    this.stamp.set(s.stamp);
    this.clock = s.clock;
  }
}

export interface AssocCacheSnapshot {
  key: Float64Array;
  ctx: Int32Array;
  pcid: Int32Array;
  value: Float64Array;
  aux: Float64Array;
  perm: Int32Array;
  stamp: Float64Array;
  clock: number;
}
