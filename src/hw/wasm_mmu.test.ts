// SPDX-License-Identifier: MIT
// The wasm core against the JS Mmu, its reference: random machines (below), random caches and
// random streams of accesses, probes, batches, table edits, CR3 loads and invalidations, driven
// into both. After every operation the outcome, every result field and every counter must be
// equal; at the end, the table words (A/D bits), every cache entry and its LRU clock.

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "./addr.js";
import type { AssocCache } from "./assoc_cache.js";
import {
  ACC_USER,
  Mmu,
  type MmuConfig,
  NESTED_TLB_DEFAULT,
  PSC_DEFAULT,
  TLB_INTEL_GOLDEN_COVE,
  type TlbConfig,
  XLATE_OK,
  XLATE_PML_FULL,
  defaultMmuConfig,
} from "./mmu.js";
import type { PagingMode } from "./mmu_defs.js";
import { hwCounters } from "./mmu_stats.js";
import { PhysMem } from "./phys_mem.js";
import { XlateBatch, WasmMmu } from "./wasm_mmu.js";
import { REF_DATA, WalkLog } from "./walk_log.js";

// ------------------------------------------------------------------ random machines

interface MachineSpec {
  paging: PagingMode;
  guestLevels: 4 | 5;
  nestedLevels: 4 | 5;
  maxPhyAddr: number;
  seed: number;
}

interface Machine {
  mem: PhysMem;
  /** Guest root tables (gfns under EPT/NPT, host frames natively). */
  cr3s: number[];
  /** EPT/NPT root host frames (none natively). */
  nestedRoots: number[];
  /** Addresses worth translating: mapped pages, inside huge pages, holes. */
  gvas: number[];
  gpas: number[];
  /** Entries of every table: [host frame, index], for the test to edit. */
  entries: [number, number][];
}

const HOST_FRAMES = 8192;
/** Guest tables' gfns start here: the 2 MiB of guest-physical memory at 2 MiB. */
const GUEST_TABLE_GFN = 512;
/** Nested tables' host frames start here. */
const NESTED_TABLE_FRAME = 4096;

class Rng {
  private x: number;
  constructor(seed: number) {
    this.x = (seed >>> 0) % 0x7fffffff || 1;
  }
  next(): number {
    this.x ^= this.x << 13;
    this.x >>>= 0;
    this.x ^= this.x >>> 17;
    this.x ^= this.x << 5;
    this.x >>>= 0;
    return this.x;
  }
  int(n: number): number {
    return this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 2 ** 32 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const bit = (on: boolean, b: number) => (on ? b : 0);

class Builder {
  readonly rng: Rng;
  readonly mem = new PhysMem(HOST_FRAMES * PAGE_SIZE);
  readonly nested: boolean;
  readonly ept: boolean;
  /** How guest tables are reached: 0 4 KiB nested leaves, 1 one 2 MiB leaf, 2 one 1 GiB leaf (identity). */
  readonly tableMode: number;
  private nextGuestTable = GUEST_TABLE_GFN;
  private nextNestedTable = NESTED_TABLE_FRAME;
  readonly guestTables: number[] = [];
  readonly entries: [number, number][] = [];
  readonly gvas: number[] = [];
  readonly gpas: number[] = [];

  constructor(readonly spec: MachineSpec) {
    this.rng = new Rng(spec.seed);
    this.nested = spec.paging !== "native";
    this.ept = spec.paging === "ept";
    this.tableMode = this.nested ? this.rng.int(3) : 0;
  }

  /** Host frame of a guest table's gfn. */
  hostOf(gfn: number): number {
    if (!this.nested || this.tableMode === 2) return gfn;
    return (this.tableMode === 0 ? 2048 : 1024) + (gfn - GUEST_TABLE_GFN);
  }

  guestTable(): number {
    const g = this.nextGuestTable++;
    this.mem.allocTable(this.hostOf(g));
    this.guestTables.push(g);
    return g;
  }

  nestedTable(): number {
    const f = this.nextNestedTable++;
    this.mem.allocTable(f);
    return f;
  }

  private write(hpfn: number, idx: number, lo: number, hi: number): void {
    this.mem.writeEntry(hpfn, idx, lo >>> 0, hi >>> 0);
    this.entries.push([hpfn, idx]);
  }

  /** High word of an entry: frame bits 51:32, maybe a reserved bit above MAXPHYADDR, maybe NX/SVE. */
  private hiWord(frame: number, top: boolean): number {
    let hi = Math.floor(frame / 2 ** 20) & 0xfffff;
    const spare = 52 - this.spec.maxPhyAddr;
    if (spare > 0 && this.rng.chance(0.02)) hi |= 1 << (this.spec.maxPhyAddr - 32 + this.rng.int(spare));
    if (top) hi |= 1 << 31;
    return hi;
  }

  private x86Entry(frame: number, level: number, leaf: boolean): [number, number] {
    const r = this.rng;
    let lo = bit(r.chance(leaf ? 0.93 : 0.97), 1) | bit(r.chance(0.8), 2) | bit(r.chance(0.85), 4) | bit(r.chance(0.5), 0x20);
    if (leaf) lo |= bit(r.chance(0.4), 0x40) | bit(r.chance(0.2), 0x100) | bit(level > 1, 0x80) | bit(level > 1 && r.chance(0.2), 0x1000);
    else if (level >= 4 && r.chance(0.02)) lo |= 0x80;
    if (leaf && level > 1 && r.chance(0.03)) lo |= 1 << (13 + r.int(level === 2 ? 8 : 17));
    lo |= (frame & 0xfffff) * PAGE_SIZE;
    return [lo, this.hiWord(frame, r.chance(leaf ? 0.2 : 0.05))];
  }

  private eptEntry(frame: number, level: number, leaf: boolean): [number, number] {
    const r = this.rng;
    let rwx = r.chance(0.85) ? 7 : r.pick([1, 3, 5, 4, 0, 2, 6]);
    if (!leaf && r.chance(0.02)) rwx |= r.pick([0x8, 0x40, 0x80]);
    let lo = rwx | bit(r.chance(0.5), 0x100);
    if (leaf) {
      lo |= (r.chance(0.95) ? r.pick([6, 6, 0, 4]) : r.pick([2, 3, 7])) << 3;
      lo |= bit(r.chance(0.3), 0x40) | bit(r.chance(0.4), 0x200) | bit(level > 1, 0x80);
      if (level > 1 && r.chance(0.03)) lo |= 1 << (12 + r.int(level === 2 ? 9 : 18));
    }
    lo |= (frame & 0xfffff) * PAGE_SIZE;
    return [lo, this.hiWord(frame, r.chance(0.1))];
  }

  private entry(ept: boolean, frame: number, level: number, leaf: boolean): [number, number] {
    return ept ? this.eptEntry(frame, level, leaf) : this.x86Entry(frame, level, leaf);
  }

  /** Maps `addr` with a leaf at `leafLevel` in the tree at `root` (guest or nested), making tables; false if blocked by a huge leaf. */
  map(root: number, addr: number, leafLevel: number, frame: number, guest: boolean): boolean {
    const levels = guest ? this.spec.guestLevels : this.spec.nestedLevels;
    const ept = !guest && this.ept;
    let table = root;
    for (let level = levels; level > leafLevel; level--) {
      const hpfn = guest ? this.hostOf(table) : table;
      const idx = Math.floor(addr / 2 ** (12 + 9 * (level - 1))) % 512;
      let lo = this.mem.readLo(hpfn, idx);
      let hi = this.mem.readHi(hpfn, idx);
      if (lo === 0 && hi === 0) {
        table = guest ? this.guestTable() : this.nestedTable();
        [lo, hi] = this.entry(ept, table, level, false);
        this.write(hpfn, idx, lo, hi);
        continue;
      }
      if (level <= 3 && (lo & 0x80) !== 0) return false;
      table = (lo >>> 12) + (hi & 0xff) * 2 ** 20;
      if (!guest || !this.nested) {
        if (table >= HOST_FRAMES || !this.mem.isTable(table)) return false;
      } else if (table < GUEST_TABLE_GFN || table >= this.nextGuestTable) {
        return false;
      }
    }
    const hpfn = guest ? this.hostOf(table) : table;
    const idx = Math.floor(addr / 2 ** (12 + 9 * (leafLevel - 1))) % 512;
    if (this.mem.readLo(hpfn, idx) !== 0) return false;
    const [lo, hi] = this.entry(ept, frame, leafLevel, true);
    this.write(hpfn, idx, lo, hi);
    return true;
  }

  /** A gva of the guest's address space from small index pools, so upper tables are shared. */
  gva(): number {
    const r = this.rng;
    const pools = [[0], [0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [0, 1, 2], [0, 1, 511], [0, 1, 300]];
    let a = 0;
    for (let l = 1; l <= this.spec.guestLevels; l++) a += r.pick(pools[l]!) * 2 ** (12 + 9 * (l - 1));
    return a;
  }

  /** EPT/NPT entries for the guest tables (one way of three) and for `gpa`, in the tree at `root`. */
  mapNested(root: number, dataGpas: number[]): void {
    const r = this.rng;
    if (this.tableMode === 0) {
      for (const g of this.guestTables) if (!r.chance(0.03)) this.map(root, g * PAGE_SIZE, 1, this.hostOf(g), false);
    } else if (this.tableMode === 1) {
      this.map(root, GUEST_TABLE_GFN * PAGE_SIZE, 2, 1024, false);
    } else {
      this.map(root, 0, 3, 0, false);
    }
    for (const gpa of dataGpas) {
      if (r.chance(0.05)) continue;
      const level = r.chance(0.6) ? 1 : r.chance(0.6) ? 2 : 3;
      const span = 2 ** (9 * (level - 1));
      this.map(root, gpa, level, r.int(2 ** 30 / span) * span, false);
    }
  }
}

/** A random machine; the same spec gives the same machine, word for word. */
function buildMachine(spec: MachineSpec): Machine {
  const b = new Builder(spec);
  const r = b.rng;
  const roots = [b.guestTable(), b.guestTable()];
  const dataGpas: number[] = [];
  for (let k = 0; k < 14; k++) {
    const level = r.chance(0.65) ? 1 : r.chance(0.6) ? 2 : 3;
    const span = 2 ** (9 * (level - 1));
    const gfn = (r.chance(0.5) ? 1 + r.int(64) : r.int(2 ** 28 / span)) * span;
    const base = Math.floor(b.gva() / (span * PAGE_SIZE)) * span * PAGE_SIZE;
    if (!b.map(roots[k % 5 === 4 ? 1 : 0]!, base, level, gfn, true)) continue;
    const inside = r.int(span) * PAGE_SIZE + r.int(512) * 8;
    b.gvas.push(base, base + inside);
    dataGpas.push(gfn * PAGE_SIZE, gfn * PAGE_SIZE + inside);
  }
  // The second root shares the first's upper entries for half of its slots.
  const levels = spec.guestLevels;
  for (let i = 0; i < 512; i += 2) {
    const lo = b.mem.readLo(b.hostOf(roots[0]!), i);
    if (lo !== 0) b.mem.writeEntry(b.hostOf(roots[1]!), i, lo, b.mem.readHi(b.hostOf(roots[0]!), i));
  }
  for (let k = 0; k < 3; k++) b.gvas.push(b.gva() + r.int(PAGE_SIZE));
  b.gvas.push(2 ** (12 + 9 * levels) - PAGE_SIZE);
  const nestedRoots: number[] = [];
  if (b.nested) {
    for (let k = 0; k < 2; k++) {
      const root = b.nestedTable();
      b.mapNested(root, dataGpas);
      nestedRoots.push(root);
    }
  }
  const gpas = [...dataGpas, ...b.guestTables.map((g) => g * PAGE_SIZE + r.int(512) * 8), r.int(2 ** 30) * PAGE_SIZE];
  return { mem: b.mem, cr3s: roots, nestedRoots, gvas: b.gvas, gpas, entries: b.entries };
}

// ------------------------------------------------------------------ the differential driver

const TINY_SHARED: TlbConfig = { "4k": { sets: 4, ways: 2 }, "2m": "shared", "1g": null };
const TINY_SPLIT: TlbConfig = { "4k": { sets: 2, ways: 3 }, "2m": { sets: 2, ways: 2 }, "1g": { sets: 1, ways: 2 } };
/** Fully associative and odd widths: the core's set scan goes 4 ways per SIMD compare, 32 per mask, the rest one by one. */
const WIDE: TlbConfig = { "4k": { sets: 1, ways: 37 }, "2m": { sets: 2, ways: 6 }, "1g": { sets: 1, ways: 72 } };
const TINY_PSC = { pde: { sets: 2, ways: 2 }, pdpte: { sets: 1, ways: 2 }, pml4e: { sets: 1, ways: 1 }, pml5e: { sets: 1, ways: 1 } };
const ACC = fc.constantFrom(0, 2, 4, 6, 16, 20);
/** An offset from a listed gva: mostly in its page, sometimes in the 4 MiB around it. */
const OFF = fc.oneof({ weight: 3, arbitrary: fc.nat(4095) }, fc.nat(2 ** 22 - 1));

const opArb = fc.oneof(
  { weight: 12, arbitrary: fc.record({ k: fc.constant("access" as const), g: fc.nat(), off: OFF, acc: ACC, log: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("probe" as const), g: fc.nat(), off: OFF, acc: ACC, log: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("phys" as const), g: fc.nat(), acc: ACC, side: fc.boolean(), log: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("batch" as const),
      items: fc.array(fc.record({ g: fc.nat(), off: OFF, acc: ACC }), { minLength: 1, maxLength: 24 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("cr3" as const), root: fc.nat(), pcid: fc.nat(3), noFlush: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("invlpg" as const), g: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("invpcid" as const), type: fc.constantFrom(0, 1, 2, 3), pcid: fc.nat(3), g: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("invvpid" as const), type: fc.constantFrom(0, 1, 2, 3), vpid: fc.nat(3), g: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("invept" as const), type: fc.constantFrom(1, 2), root: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("ctx" as const), vpid: fc.nat(3), root: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("flushAll" as const) }) },
  // The PML control and GUEST_PML_INDEX as KVM sets them (on under EPT only); low indices make the log fill.
  { weight: 2, arbitrary: fc.record({ k: fc.constant("pml" as const), on: fc.boolean(), index: fc.constantFrom(511, 2, 1, 0, 0xffff) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("reg" as const),
      which: fc.constantFrom("cr0Wp", "efeNxe", "cr4Pge", "smep", "smap", "pcide"),
      on: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("edit" as const),
      path: fc.boolean(),
      g: fc.nat(),
      off: OFF,
      e: fc.nat(),
      bit: fc.nat(11),
    }),
  },
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

const specArb = fc.record({
  paging: fc.constantFrom<PagingMode>("native", "ept", "npt"),
  guestLevels: fc.constantFrom<4 | 5>(4, 5),
  nestedLevels: fc.constantFrom<4 | 5>(4, 5),
  maxPhyAddr: fc.constantFrom(36, 39, 46, 52),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
});
const cachesArb = fc.record({
  tlb: fc.constantFrom(null, TINY_SHARED, TINY_SPLIT, TLB_INTEL_GOLDEN_COVE, WIDE),
  psc: fc.constantFrom(null, TINY_PSC, PSC_DEFAULT),
  nestedTlb: fc.constantFrom(null, { sets: 2, ways: 2 }, NESTED_TLB_DEFAULT),
  nestedPsc: fc.constantFrom(null, TINY_PSC, PSC_DEFAULT),
  eptAd: fc.boolean(),
});

const regsArb = fc.record({
  cr0Wp: fc.boolean(),
  efeNxe: fc.boolean(),
  cr4Pge: fc.boolean(),
  smep: fc.boolean(),
  smap: fc.boolean(),
  pcide: fc.boolean(),
});
type Regs = typeof regsArb extends fc.Arbitrary<infer T> ? T : never;

type Translator = Mmu | WasmMmu;
const FIELDS = [
  "hpa",
  "gpa",
  "pageSize",
  "errorCode",
  "exitQual",
  "faultGva",
  "faultGpa",
  "faultLevel",
  "faultReason",
  "pmlIndex",
] as const;
const fieldsOf = (t: Translator) => Object.fromEntries(FIELDS.map((f) => [f, t[f]]));

/**
 * Changes a table entry: flips P/R, RW/W, US/X, A or D (x86 and EPT), PS, a frame bit or NX/SVE,
 * or makes it a huge leaf (PS, frame aligned to 2 MiB or 1 GiB), so a page changes size under the TLB.
 */
function edit(mem: PhysMem, [pfn, idx]: [number, number], which: number): void {
  const lo = mem.readLo(pfn, idx);
  let hi = mem.readHi(pfn, idx);
  const loChange = [1, 2, 4, 0x20, 0x100, 0x40, 0x200, 0x80, 0x2000];
  let next = lo;
  if (which < loChange.length) next = lo ^ loChange[which]!;
  else if (which === 9) hi = (hi ^ 0x8000_0000) >>> 0;
  else next = (lo | 0x80) & (which === 10 ? ~0x1ff000 : ~0x3ffff000);
  mem.writeEntry(pfn, idx, next >>> 0, hi);
}

/** The `k`th entry a walk of `gva` reads now (guest or nested), found by a cache-less JS probe of the same tables. */
function onPath(t: Translator, gva: number, k: number): [number, number] {
  const probe = new Mmu(t.mem, { ...t.config, tlb: null, psc: null, nestedTlb: null, nestedPsc: null });
  Object.assign(probe, { cr3Frame: t.cr3Frame, nestedRoot: t.nestedRoot, efeNxe: t.efeNxe });
  const log = new WalkLog();
  probe.log = log;
  probe.probe(gva, ACC_USER);
  const reads = log.steps.filter(
    (s) => s.kind !== REF_DATA && s.hpa >= 0 && s.hpa < t.mem.bytes && t.mem.isTable(Math.floor(s.hpa / PAGE_SIZE)),
  );
  if (reads.length === 0) return [t.cr3Frame, 0];
  const hpa = reads[k % reads.length]!.hpa;
  return [Math.floor(hpa / PAGE_SIZE), (hpa % PAGE_SIZE) / 8];
}

/** Runs `op` on one implementation; returns what the op gave (outcome, batch progress and hpas, log). */
function apply(t: Translator, m: Machine, op: Op, batch: XlateBatch | null): unknown {
  const gva = (g: number, off: number) => m.gvas[g % m.gvas.length]! + off;
  const root = (r: number) => (m.nestedRoots.length > 0 ? m.nestedRoots[r % m.nestedRoots.length]! : -1);
  const logged = (on: boolean, f: () => number) => {
    const log = on ? new WalkLog() : null;
    t.log = log;
    const r = f();
    t.log = null;
    return { r, steps: log?.steps };
  };
  switch (op.k) {
    case "access":
      return logged(op.log, () => t.access(gva(op.g, op.off), op.acc));
    case "probe":
      return logged(op.log, () => t.probe(gva(op.g, op.off), op.acc));
    case "phys": {
      const gpa = m.gpas[op.g % m.gpas.length]!;
      return logged(op.log, () => (op.side ? t.accessPhys(gpa, op.acc) : t.probePhys(gpa, op.acc)));
    }
    case "batch": {
      // Each translated access's hpa and gpa, then the result of the one that stopped the batch.
      if (t instanceof Mmu) {
        const out: number[] = [];
        for (const it of op.items) {
          const r = t.access(gva(it.g, it.off), it.acc);
          if (r !== XLATE_OK) return [...out, r];
          out.push(t.hpa, t.gpa);
        }
        return out;
      }
      op.items.forEach((it, i) => {
        batch!.gva[i] = gva(it.g, it.off);
        batch!.acc[i] = it.acc;
      });
      const done = t.accessBatch(batch!, 0, op.items.length);
      const out: number[] = [];
      for (let i = 0; i < done; i++) out.push(batch!.hpa[i]!, batch!.gpa[i]!);
      return done < op.items.length ? [...out, t.batchResult] : out;
    }
    case "cr3":
      return t.loadCr3(m.cr3s[op.root % m.cr3s.length]!, op.pcid, op.noFlush);
    case "invlpg":
      return t.invlpg(gva(op.g, 0));
    case "invpcid":
      return t.invpcid(op.type as 0 | 1 | 2 | 3, op.pcid, gva(op.g, 0));
    case "invvpid":
      return t.invvpid(op.type as 0 | 1 | 2 | 3, op.vpid, gva(op.g, 0));
    case "invept":
      return t.invept(op.type as 1 | 2, root(op.root));
    case "ctx":
      return t.setNestedContext(op.vpid, root(op.root));
    case "flushAll":
      return t.flushAll();
    case "pml":
      t.pmlOn = op.on && t.isEpt;
      t.pmlIndex = op.index;
      return null;
    case "reg":
      t[op.which] = op.on;
      return null;
    case "edit":
      return edit(t.mem, op.path ? onPath(t, gva(op.g, op.off), op.e) : m.entries[op.e % m.entries.length]!, op.bit);
  }
}

function firstDifference(a: Uint32Array, b: Uint32Array): string | null {
  if (a.length !== b.length) return `word pools of ${a.length} and ${b.length} words`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `word ${i}: JS 0x${a[i]!.toString(16)}, wasm 0x${b[i]!.toString(16)}`;
  return null;
}

function compareCaches(js: Mmu, wasm: WasmMmu): void {
  const pairs: [AssocCache | null, number][] = [
    [js.tlb4k, wasm.tlb4k],
    [js.tlb2m, wasm.tlb2m],
    [js.tlb1g, wasm.tlb1g],
    [js.nestedTlb, wasm.nestedTlb],
    ...[2, 3, 4, 5].map((l) => [js.psc[l]!, wasm.psc[l]!] as [AssocCache | null, number]),
    ...[2, 3, 4, 5].map((l) => [js.nestedPsc[l]!, wasm.nestedPsc[l]!] as [AssocCache | null, number]),
  ];
  for (const [c, w] of pairs) {
    expect(w === 0).toBe(c === null);
    if (c !== null) expect(wasm.cacheSnapshot(w)).toEqual(c.snapshot());
  }
  expect(wasm.tlbLiveEntries()).toBe(js.tlbLiveEntries());
}

function run(
  spec: MachineSpec,
  caches: Omit<MmuConfig, "paging" | "guestLevels" | "nestedLevels" | "maxPhyAddr">,
  regs: Regs,
  ops: Op[],
): void {
  const config = defaultMmuConfig(spec.paging, {
    ...caches,
    guestLevels: spec.guestLevels,
    nestedLevels: spec.nestedLevels,
    maxPhyAddr: spec.maxPhyAddr,
  });
  const mj = buildMachine(spec);
  const mw = buildMachine(spec);
  const js = new Mmu(mj.mem, config);
  const wasm = new WasmMmu(mw.mem, config);
  const batch = new XlateBatch(mw.mem, 24);
  for (const t of [js, wasm]) {
    Object.assign(t, regs);
    if (mj.nestedRoots.length > 0) t.setNestedContext(1, mj.nestedRoots[0]!);
    t.loadCr3(mj.cr3s[0]!);
  }
  ops.forEach((op, i) => {
    const where = `op ${i} ${JSON.stringify(op)}`;
    expect(apply(wasm, mw, op, batch), where).toEqual(apply(js, mj, op, null));
    expect(fieldsOf(wasm), where).toEqual(fieldsOf(js));
    expect(hwCounters(wasm.stats), where).toEqual(hwCounters(js.stats));
  });
  expect(firstDifference(mj.mem.words, mw.mem.words)).toBe(null);
  expect(Array.from({ length: 512 }, (_, i) => wasm.pmlEntry(i))).toEqual(Array.from(js.pmlLog));
  compareCaches(js, wasm);
}

describe("the wasm core gives what the JS Mmu gives", () => {
  test("random machines, caches and operation streams: outcomes, fields, counters, A/D bits and caches", () => {
    fc.assert(fc.property(specArb, cachesArb, regsArb, fc.array(opArb, { minLength: 1, maxLength: 150 }), run), { numRuns: 200 });
  });

  test("with PML on under EPT: both log the same gpas, 4 KiB aligned, and stop with the same PML-full exits", () => {
    let full = 0;
    let logged = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const spec = { paging: "ept" as const, guestLevels: 4 as const, nestedLevels: 4 as const, maxPhyAddr: 46, seed };
      const out = [Mmu, WasmMmu].map((Impl) => {
        const m = buildMachine(spec);
        const t = new Impl(m.mem, defaultMmuConfig("ept", { eptAd: true }));
        t.setNestedContext(1, m.nestedRoots[0]!);
        t.loadCr3(m.cr3s[0]!);
        t.pmlOn = true;
        t.pmlIndex = 3;
        const rs = m.gvas.map((gva) => t.access(gva, 6));
        return { rs, index: t.pmlIndex, log: Array.from({ length: 512 }, (_, i) => t.pmlEntry(i)), stats: hwCounters(t.stats) };
      });
      expect(out[1]).toEqual(out[0]);
      full += out[0]!.rs.filter((r) => r === XLATE_PML_FULL).length;
      logged += out[0]!.stats.pmlEntries;
      expect(out[0]!.stats.pmlEntries).toBeLessThanOrEqual(4);
      for (const gpa of out[0]!.log) expect(gpa % PAGE_SIZE).toBe(0);
    }
    expect(full).toBeGreaterThan(0);
    expect(logged).toBeGreaterThan(0);
  });

  test("the machines exercise what they should: walks of every outcome, huge pages, A/D writes", () => {
    const total: Record<string, number> = {};
    const outcomes = new Set<number>();
    const sizes = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const paging = (["native", "ept", "npt"] as const)[seed % 3]!;
      const spec = {
        paging,
        guestLevels: (seed % 2 ? 4 : 5) as 4 | 5,
        nestedLevels: (seed % 4 < 2 ? 4 : 5) as 4 | 5,
        maxPhyAddr: 46,
        seed,
      };
      const m = buildMachine(spec);
      const mmu = new WasmMmu(m.mem, defaultMmuConfig(paging, { guestLevels: spec.guestLevels, nestedLevels: spec.nestedLevels }));
      if (m.nestedRoots.length > 0) mmu.setNestedContext(1, m.nestedRoots[0]!);
      mmu.loadCr3(m.cr3s[0]!);
      for (const gva of m.gvas) {
        for (const acc of [4, 6, 20]) {
          const r = mmu.access(gva, acc);
          outcomes.add(r);
          if (r === XLATE_OK) sizes.add(mmu.pageSize);
        }
      }
      for (const [k, v] of Object.entries(hwCounters(mmu.stats))) total[k] = (total[k] ?? 0) + v;
    }
    expect([...outcomes].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...sizes].sort((a, b) => a - b)).toEqual([PAGE_SIZE, 2 ** 21, 2 ** 30]);
    for (const k of ["tlbHits", "adWrites", "nestedAdWrites", "pscHits", "nestedTlbHits", "nestedPscHits"])
      expect(total[k]).toBeGreaterThan(0);
  });
});
