// SPDX-License-Identifier: MIT
// A scratch machine for one translation: hand-built guest tables that map one address and
// EPT/NPT tables that map the guest-physical pages involved, on a vCPU MMU. It stands in for
// the guest kernel and KVM where only the hardware is of interest: `memvirt translate`, the
// visualizer's translate view, hw tests and benchmarks.

import { PAGE_1G, PAGE_2M, PAGE_SIZE, pageSizeLevel, tableIndex } from "./addr.js";
import { MT_WB, makeEptPte } from "./ept_pte.js";
import { Mmu, defaultMmuConfig, type MmuConfig, type PagingMode } from "./mmu.js";
import { type HwMmu, createMmu } from "./mmu_core.js";
import { PhysMem } from "./phys_mem.js";
import { makeX86Pte } from "./x86_pte.js";

export type PageSizeName = "4k" | "2m" | "1g";
export type AccessName = "read" | "write" | "fetch";

export interface TranslateOptions {
  paging: PagingMode;
  levels: 4 | 5;
  guestPage: PageSizeName;
  hostPage: PageSizeName;
  /** The model's address: the low 48 (or 57) bits of the canonical gva. */
  gva: number;
  /** Accesses to make; the report shows the last one. 1 = cold, 2 = warm (a second access after a first). */
  accesses: number;
  access: AccessName;
  user: boolean;
  /**
   * Paging-structure caches and nested TLB on (the TLB is always on). Off gives the architectural
   * worst case: even within one walk nothing is cached, so a cold 4+4 walk reads 24 entries.
   */
  caches: boolean;
  eptAd: boolean;
}

export const DEFAULT_TRANSLATE: TranslateOptions = {
  paging: "ept",
  levels: 4,
  guestPage: "4k",
  hostPage: "4k",
  gva: 0x7f12_3456_7000,
  accesses: 1,
  access: "read",
  user: true,
  caches: false,
  eptAd: true,
};

export const PAGE_BYTES: Record<PageSizeName, number> = { "4k": PAGE_SIZE, "2m": PAGE_2M, "1g": PAGE_1G };

/** Host-physical offset of guest RAM: gpa g is backed by hpa GUEST_RAM_HPA + g. */
const GUEST_RAM_HPA = 4 * PAGE_1G;
/** Guest RAM size in the demo machine. */
const GUEST_RAM = 4 * PAGE_1G;

/** The demo machine: memory, tables and a vCPU MMU, built for one address. */
export class TranslateMachine {
  readonly mem: PhysMem;
  /** The wasm core, as in a run (its walk log is the JS Mmu's, wasm_mmu.test.ts). */
  readonly mmu: HwMmu;
  private nextHostTable: number;
  private nextGuestTable: number;
  private readonly nestedRoot: number;
  private readonly nested: boolean;

  constructor(readonly opts: TranslateOptions) {
    this.nested = opts.paging !== "native";
    this.mem = new PhysMem(this.nested ? GUEST_RAM_HPA + GUEST_RAM : GUEST_RAM);
    const over: Partial<MmuConfig> = { guestLevels: opts.levels, nestedLevels: opts.levels, eptAd: opts.eptAd };
    if (!opts.caches) {
      over.psc = null;
      over.nestedTlb = null;
      over.nestedPsc = null;
    }
    this.mmu = createMmu(this.mem, defaultMmuConfig(opts.paging, over));
    // Host frames for EPT/NPT tables from 16 MiB up; guest tables from guest-physical 1 MiB up.
    this.nextHostTable = (16 * 1024 * 1024) / PAGE_SIZE;
    this.nextGuestTable = (1024 * 1024) / PAGE_SIZE;
    this.nestedRoot = this.nested ? this.allocHostTable() : -1;
    const root = this.allocGuestTable();
    if (this.nested) this.mmu.setNestedContext(1, this.nestedRoot);
    this.mmu.loadCr3(root);
    this.mapGuest(opts.gva);
  }

  private allocHostTable(): number {
    const pfn = this.nextHostTable++;
    this.mem.allocTable(pfn);
    return pfn;
  }

  /** A guest table page: a guest frame, backed (under nested paging) by a host frame mapped in EPT/NPT. */
  private allocGuestTable(): number {
    const gfn = this.nextGuestTable++;
    if (this.nested) {
      this.mapNested(gfn * PAGE_SIZE);
      this.mem.allocTable(gfn + GUEST_RAM_HPA / PAGE_SIZE);
    } else {
      this.mem.allocTable(gfn);
    }
    return gfn;
  }

  private guestTableHpfn(gfn: number): number {
    return this.nested ? gfn + GUEST_RAM_HPA / PAGE_SIZE : gfn;
  }

  /** Guest tables mapping `gva` to a data page of the guest page size at a fixed guest-physical address. */
  private mapGuest(gva: number): void {
    const gSize = PAGE_BYTES[this.opts.guestPage];
    const leafLevel = pageSizeLevel(gSize);
    // Data page: in the second GiB of guest RAM, aligned to its size.
    const dataGpa = PAGE_1G + (Math.floor(gva / gSize) % (PAGE_1G / gSize)) * gSize;
    let table = this.mmu.cr3Frame;
    for (let level = this.opts.levels; level > leafLevel; level--) {
      const idx = tableIndex(gva, level);
      const hpfn = this.guestTableHpfn(table);
      let lo = this.mem.readLo(hpfn, idx);
      let hi = this.mem.readHi(hpfn, idx);
      if ((lo & 1) === 0) {
        const child = this.allocGuestTable();
        [lo, hi] = makeX86Pte({ pfn: child, writable: true, user: true });
        this.mem.writeEntry(hpfn, idx, lo, hi);
      }
      table = (lo >>> 12) + (hi & 0xfffff) * 0x100000;
    }
    const idx = tableIndex(gva, leafLevel);
    const [lo, hi] = makeX86Pte({ pfn: dataGpa / PAGE_SIZE, writable: true, user: true, huge: leafLevel > 1 });
    this.mem.writeEntry(this.guestTableHpfn(table), idx, lo, hi);
    // The host page that backs the accessed byte (a guest huge page may span many host pages).
    if (this.nested) this.mapNested(dataGpa + (gva - Math.floor(gva / gSize) * gSize));
  }

  /** EPT/NPT entries mapping the host page (of the host page size) that contains `gpa`. */
  private mapNested(gpa: number): void {
    const hSize = PAGE_BYTES[this.opts.hostPage];
    const leafLevel = pageSizeLevel(hSize);
    const ept = this.opts.paging === "ept";
    let table = this.nestedRoot;
    for (let level = this.opts.levels; level > leafLevel; level--) {
      const idx = tableIndex(gpa, level);
      let lo = this.mem.readLo(table, idx);
      let hi = this.mem.readHi(table, idx);
      if (lo === 0 && hi === 0) {
        const child = this.allocHostTable();
        [lo, hi] = ept ? makeEptPte({ pfn: child, r: true, w: true, x: true }) : makeX86Pte({ pfn: child, writable: true, user: true });
        this.mem.writeEntry(table, idx, lo, hi);
      }
      table = (lo >>> 12) + (hi & 0xfffff) * 0x100000;
    }
    const idx = tableIndex(gpa, leafLevel);
    if (this.mem.readLo(table, idx) !== 0) return;
    const hostPfn = (GUEST_RAM_HPA + Math.floor(gpa / hSize) * hSize) / PAGE_SIZE;
    const huge = leafLevel > 1;
    const [lo, hi] = ept
      ? makeEptPte({ pfn: hostPfn, r: true, w: true, x: true, memType: MT_WB, ipat: true, huge })
      : makeX86Pte({ pfn: hostPfn, writable: true, user: true, huge });
    this.mem.writeEntry(table, idx, lo, hi);
  }
}

/**
 * A scratch machine whose guest tables map `bytes` of guest-virtual memory from `gvaBase`
 * linearly onto guest-physical memory with 4 KiB pages, and (nested) whose EPT/NPT maps all of
 * guest-physical memory with 4 KiB pages: the footprint the benchmarks walk over.
 */
export class ScratchRange {
  readonly mem: PhysMem;
  /** The JS reference Mmu: bench/run.ts times it as the `-js` cases and builds its wasm core beside it. */
  readonly mmu: Mmu;
  readonly pages: number;
  private nextGuestTable: number;
  private nextHostTable: number;

  constructor(
    readonly paging: PagingMode,
    readonly bytes: number,
    mmuOver: Partial<MmuConfig> = {},
    readonly gvaBase = 0x7f00_0000_0000,
  ) {
    this.pages = Math.ceil(bytes / PAGE_SIZE);
    const tablePages = Math.ceil(this.pages / 512) + Math.ceil(this.pages / 512 / 512) + 8;
    // Guest-physical: data pages from 0, then guest tables. Host-physical: guest RAM from 0, then EPT tables.
    const guestFrames = this.pages + tablePages;
    const nested = paging !== "native";
    const hostTables = nested ? Math.ceil(guestFrames / 512) + Math.ceil(guestFrames / 512 / 512) + 8 : 0;
    this.mem = new PhysMem((guestFrames + hostTables) * PAGE_SIZE);
    this.mmu = new Mmu(this.mem, defaultMmuConfig(paging, mmuOver));
    this.nextGuestTable = this.pages;
    this.nextHostTable = guestFrames;
    const levels = this.mmu.config.guestLevels;
    const root = this.newTable(false);
    if (nested) {
      const nestedRoot = this.newTable(true);
      // gpa == hpa frame for guest RAM; EPT/NPT tables sit after it.
      for (let f = 0; f < guestFrames; f++) this.map(nestedRoot, f * PAGE_SIZE, f, this.mmu.config.nestedLevels, paging);
      this.mmu.setNestedContext(1, nestedRoot);
    }
    for (let p = 0; p < this.pages; p++) this.map(root, gvaBase + p * PAGE_SIZE, p, levels, "native");
    this.mmu.loadCr3(root);
  }

  private newTable(host: boolean): number {
    const f = host ? this.nextHostTable++ : this.nextGuestTable++;
    this.mem.allocTable(f);
    return f;
  }

  /** Maps `addr` to `pfn` in the tree at `root`: a guest tree ("native" format) or an EPT/NPT tree. */
  private map(root: number, addr: number, pfn: number, levels: number, tree: PagingMode): void {
    const ept = tree === "ept";
    let table = root;
    const entry = (p: number, leaf: boolean) =>
      ept
        ? makeEptPte({ pfn: p, r: true, w: true, x: true, memType: leaf ? MT_WB : 0 })
        : makeX86Pte({ pfn: p, writable: true, user: true });
    for (let level = levels; level > 1; level--) {
      const idx = tableIndex(addr, level);
      let lo = this.mem.readLo(table, idx);
      let hi = this.mem.readHi(table, idx);
      if (lo === 0 && hi === 0) {
        [lo, hi] = entry(this.newTable(tree !== "native"), false);
        this.mem.writeEntry(table, idx, lo, hi);
      }
      table = (lo >>> 12) + (hi & 0xfffff) * 0x100000;
    }
    this.mem.writeEntry(table, tableIndex(addr, 1), ...entry(pfn, true));
  }
}
