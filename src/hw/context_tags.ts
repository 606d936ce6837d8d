// SPDX-License-Identifier: MIT
// The tags that stand for a TLB context (VPID and EPTP/nCR3 root), a PCID within it and an
// EPT/NPT root, as the JS Mmu (mmu_state.ts) and the wasm core (wasm_mmu_state.ts) both keep
// them: a cache entry carries the tags it was filled under, and a flush renews the tags (a new
// tag is never reused), so no entry is visited. Also what INVPCID, INVVPID and INVEPT do to the
// tags (SDM vol. 3, 29.4.3 "Invalidation of TLBs and Paging-Structure Caches"); dropping one
// address from the caches is the caller's.

/** Context keys (VPID, EPTP/nCR3 root) as one number: vpid * 2^32 + root + 1 (root -1 natively). */
const CTX_VPID = 2 ** 32;
const MAX_VPID = 2 ** 20;

function ctxKey(vpid: number, root: number): number {
  return vpid * CTX_VPID + (root + 1);
}

export class ContextTags {
  private nextTag = 1;
  /** ctxKey(vpid, root) -> tag, in creation order. */
  readonly ctxTags = new Map<number, number>();
  /** ctx tag -> pcid -> tag. */
  readonly pcidTags = new Map<number, Map<number, number>>();
  /** EPT/NPT root -> tag. */
  readonly eptTags = new Map<number, number>();
  /** The tags select() chose. */
  ctx = 0;
  pcid = 0;
  ept = 0;

  constructor(private readonly stats: { contextFlushes: number }) {}

  /** The context of `vpid` and `nestedRoot` (every entry of it, globals included). */
  key(vpid: number, nestedRoot: number): number {
    return ctxKey(vpid, nestedRoot);
  }

  /** Context keys whose VPID and root satisfy `pred`. */
  keysWhere(pred: (vpid: number, root: number) => boolean): number[] {
    const out: number[] = [];
    for (const k of this.ctxTags.keys()) {
      const v = Math.floor(k / CTX_VPID);
      if (pred(v, k - v * CTX_VPID - 1)) out.push(k);
    }
    return out;
  }

  renewCtx(key: number): void {
    const old = this.ctxTags.get(key);
    if (old !== undefined) this.pcidTags.delete(old);
    this.ctxTags.set(key, this.nextTag++);
    this.stats.contextFlushes++;
  }

  /** A new tag for `pcid` in context tag `ctx` (the caller selects the tags again). */
  renewPcid(ctx: number, pcid: number): void {
    this.pcidMap(ctx).set(pcid, this.nextTag++);
    this.stats.contextFlushes++;
  }

  pcidTagOf(ctx: number, pcid: number): number {
    const m = this.pcidMap(ctx);
    let t = m.get(pcid);
    if (t === undefined) {
      t = this.nextTag++;
      m.set(pcid, t);
    }
    return t;
  }

  private pcidMap(ctx: number): Map<number, number> {
    let m = this.pcidTags.get(ctx);
    if (!m) {
      m = new Map();
      this.pcidTags.set(ctx, m);
    }
    return m;
  }

  /** Selects the tags of `vpid`, root and `pcid` (ctx, pcid, ept), making new ones for a context not seen before. */
  select(vpid: number, nested: boolean, nestedRoot: number, pcid: number): void {
    if (!(vpid >= 0 && vpid < MAX_VPID)) throw new RangeError(`VPID must be 0..${MAX_VPID - 1}, not ${vpid}`);
    const key = ctxKey(vpid, nested ? nestedRoot : -1);
    let ctx = this.ctxTags.get(key);
    if (ctx === undefined) {
      ctx = this.nextTag++;
      this.ctxTags.set(key, ctx);
    }
    this.ctx = ctx;
    this.pcid = this.pcidTagOf(ctx, pcid);
    let ept = this.eptTags.get(nestedRoot);
    if (ept === undefined) {
      ept = this.nextTag++;
      this.eptTags.set(nestedRoot, ept);
    }
    this.ept = ept;
  }

  /**
   * INVPCID of `type` by VPID `vpid` in context tag `ctx`: 0 one address of `pcid`
   * (`dropAddress(ctx, its pcid tag)`), 1 all of `pcid`, 2 all but globals, 3 all.
   */
  invpcid(type: 0 | 1 | 2 | 3, vpid: number, ctx: number, pcid: number, dropAddress: (ctx: number, pcidTag: number) => void): void {
    const vpidCtxs = this.keysWhere((v) => v === vpid);
    if (type === 0) {
      dropAddress(ctx, this.pcidTagOf(ctx, pcid));
    } else if (type === 1) {
      this.renewPcid(ctx, pcid);
    } else if (type === 2) {
      for (const k of vpidCtxs) this.renewCtx(k);
    } else {
      for (const k of vpidCtxs) this.pcidTags.delete(this.ctxTags.get(k)!);
      this.stats.contextFlushes++;
    }
  }

  /**
   * INVVPID of `type` for `vpid`: 0 one address (`dropAddress(the contexts' tags)`), 1 the
   * VPID's contexts, 2 every VPID's, 3 the VPID's but globals.
   */
  invvpid(type: 0 | 1 | 2 | 3, vpid: number, dropAddress: (ctxTags: Set<number>) => void): void {
    const keys = this.keysWhere((v) => type === 2 || v === vpid);
    if (type === 0) {
      dropAddress(new Set(keys.map((k) => this.ctxTags.get(k)!)));
    } else if (type === 3) {
      for (const k of keys) this.pcidTags.delete(this.ctxTags.get(k)!);
      this.stats.contextFlushes++;
    } else {
      for (const k of keys) this.renewCtx(k);
    }
  }

  /** INVEPT type 1 (the contexts of `nestedRoot`) or 2 (all): their EPT tags and context tags renewed. */
  invept(type: 1 | 2, nestedRoot: number): void {
    for (const root of [...this.eptTags.keys()]) {
      if (type === 2 || root === nestedRoot) this.eptTags.delete(root);
    }
    for (const k of this.keysWhere((_v, root) => type === 2 || root === nestedRoot)) this.renewCtx(k);
  }
}
