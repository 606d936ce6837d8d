// SPDX-License-Identifier: MIT
// The VMM builds the guest's page tables before any vCPU runs, as KVM's selftests do
// (tools/testing/selftests/kvm/lib/x86/processor.c: virt_arch_pgd_alloc(), __virt_pg_map(),
// virt_map(); memstress.c for where the test memory goes). Every table entry is written from
// userspace through the VMM's mapping of guest RAM: a host write that faults in the host page
// of the table frame, and no KVM exit. The data pages the regions map are never written, so
// the guest's first touch of each faults the host in (the zero page on a read).
//
// simplified: table pages come from a bump allocator above 0x180000 (KVM_GUEST_PAGE_TABLE_MIN_PADDR), never freed.
// simplified: regions are placed from the top of the highest RAM range down, each aligned to its page size (memstress).
// simplified: upper-level entries are always P|RW|US; the leaf decides user access (selftests set no US at all).

import { LEVEL_SIZE, PAGE_2M, PAGE_SIZE, tableIndex } from "../hw/addr.js";
import { TableIter, type TableView } from "../hw/table_iter.js";
import { PTE_P, PTE_PS, PTE_RW, PTE_US, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";
import type { QemuVm } from "./vm.js";

/** KVM_GUEST_PAGE_TABLE_MIN_PADDR: the selftests' page tables start here. */
export const PAGE_TABLE_MIN_PADDR = 0x180000;

export interface VirtRegionSpec {
  name: string;
  gva: number;
  size: number;
  /** 1: 4 KiB pages, 2: 2 MiB pages. */
  level: 1 | 2;
  /** Pages mapped user-accessible (U/S = 1). */
  user: boolean;
}

export interface VirtSpaceSpec {
  name: string;
  /** Index of an earlier space whose top-level entries this one copies (-1: none). */
  share: number;
  regions: readonly VirtRegionSpec[];
}

export interface VirtRegion extends VirtRegionSpec {
  /** Index of the space that maps it. */
  space: number;
  /** Guest-physical start of the memory it maps. */
  gpa: number;
}

export interface VirtSpace {
  name: string;
  /** Guest frame of the root table (what CR3 points at). */
  pgd: number;
  regions: VirtRegion[];
  /** The 4 KiB-page tables (PTs) the VMM made, by 2 MiB-aligned gva / 2 MiB. */
  pts: Map<number, number>;
}

/** The guest page tables a VMM built: its spaces and regions, and where their entries are. */
export class VirtMap {
  readonly spaces: VirtSpace[] = [];
  /** Table pages written (every level). */
  tablePages = 0;
  /** Entries written. */
  entryWrites = 0;
  private nextTableGpa = PAGE_TABLE_MIN_PADDR;

  constructor(
    private readonly qemu: QemuVm,
    readonly levels: 4 | 5,
    specs: readonly VirtSpaceSpec[],
  ) {
    const last = qemu.ranges[qemu.ranges.length - 1]!;
    let top = last.end;
    const placed: VirtRegion[][] = specs.map((sp, i) =>
      sp.regions.map((r) => {
        const align = r.level === 2 ? PAGE_2M : PAGE_SIZE;
        top = Math.floor((top - r.size) / align) * align;
        if (top < Math.max(last.start, PAGE_TABLE_MIN_PADDR + PAGE_2M))
          throw new RangeError(`${qemu.cfg.name}: guest RAM is too small for region "${r.name}" and the regions before it`);
        return { ...r, space: i, gpa: top };
      }),
    );
    this.dataFloor = top;
    specs.forEach((sp, i) => {
      const pgd = this.allocTable();
      if (sp.share >= 0) {
        // Copy the other space's top-level entries: both now walk the same lower tables.
        const from = this.spaces[sp.share]!.pgd;
        for (let idx = 0; idx < 512; idx++) {
          this.readEntry(from, idx);
          if ((this.lo & PTE_P) !== 0) this.writeEntry(pgd, idx, this.lo, this.hi);
        }
      }
      const space: VirtSpace = { name: sp.name, pgd, regions: placed[i]!, pts: new Map() };
      this.spaces.push(space);
      for (const r of placed[i]!) this.mapRegion(space, r);
    });
  }

  private readonly dataFloor: number;
  /** The entry the last readEntry() read. */
  private lo = 0;
  private hi = 0;

  /** virt_map(): each page of the region, with __virt_pg_map(). */
  private mapRegion(space: VirtSpace, r: VirtRegion): void {
    const size = LEVEL_SIZE[r.level]!;
    const leaf = PTE_P | PTE_RW | (r.user ? PTE_US : 0) | (r.level > 1 ? PTE_PS : 0);
    for (let off = 0; off < r.size; off += size) {
      const gva = r.gva + off;
      let table = space.pgd;
      // virt_create_upper_pte(): allocate and link each missing table on the way down.
      for (let level: number = this.levels; level > r.level; level--) {
        const idx = tableIndex(gva, level);
        this.readEntry(table, idx);
        if ((this.lo & PTE_P) !== 0) {
          if ((this.lo & PTE_PS) !== 0) throw new RangeError(`region "${r.name}" overlaps a huge page at level ${level}`);
          table = entryPfn(this.lo, this.hi);
          continue;
        }
        const child = this.allocTable();
        this.writeEntry(table, idx, frameLo(child, PTE_P | PTE_RW | PTE_US), frameHi(child));
        if (level === 2) space.pts.set(Math.floor(gva / PAGE_2M), child);
        table = child;
      }
      const idx = tableIndex(gva, r.level);
      this.readEntry(table, idx);
      if ((this.lo & PTE_P) !== 0) throw new RangeError(`region "${r.name}": gva 0x${gva.toString(16)} is already mapped`);
      const gfn = (r.gpa + off) / PAGE_SIZE;
      this.writeEntry(table, idx, frameLo(gfn, leaf), frameHi(gfn));
    }
  }

  /** vm_alloc_page_table(): the next free guest frame above PAGE_TABLE_MIN_PADDR (its host page is faulted in by the first write). */
  private allocTable(): number {
    const gpa = this.nextTableGpa;
    if (gpa + PAGE_SIZE > this.dataFloor)
      throw new RangeError(`${this.qemu.cfg.name}: guest RAM is too small for the page tables of its regions`);
    this.nextTableGpa += PAGE_SIZE;
    this.tablePages++;
    const gfn = gpa / PAGE_SIZE;
    // A fresh anonymous page reads as zeroes: give it (zeroed) table storage on the first write.
    this.hostFrame(gfn);
    return gfn;
  }

  /** The host frame behind guest frame `gfn`, faulted in by a write from the VMM (a plain user store to guest RAM). */
  private hostFrame(gfn: number): number {
    const q = this.qemu;
    const hva = q.gpaToHva(gfn * PAGE_SIZE);
    if (q.host.userAccess(q.mm, hva, true, 0) < 0)
      throw new RangeError(
        `${q.cfg.name}: the host could not back guest page table gfn 0x${gfn.toString(16)}: ${q.host.lastOomMessage || "out of memory"}`,
      );
    const pfn = q.host.probe(q.mm, hva).pfn;
    if (!q.host.mem.isTable(pfn)) q.host.mem.allocTable(pfn);
    return pfn;
  }

  private writeEntry(gfn: number, idx: number, lo: number, hi: number): void {
    this.qemu.host.mem.writeEntry(this.hostFrame(gfn), idx, lo, hi);
    this.entryWrites++;
  }

  /** Reads entry `idx` of guest table `gfn` through QEMU's mapping, with no side effect (0 if never written). */
  private readEntry(gfn: number, idx: number): void {
    const q = this.qemu;
    const p = q.host.probe(q.mm, q.gpaToHva(gfn * PAGE_SIZE));
    const mem = q.host.mem;
    if (p.state !== "present" || !mem.isTable(p.pfn)) {
      this.lo = 0;
      this.hi = 0;
      return;
    }
    this.lo = mem.readLo(p.pfn, idx);
    this.hi = mem.readHi(p.pfn, idx);
  }

  /**
   * The guest-physical address of the entry at `level` that maps `gva` in space `space`,
   * found by walking the tables from the VMM (vm_get_page_table_entry()); -1 if a table on
   * the way is not present. The guest code is handed this pointer to store to.
   */
  entryGpa(space: number, gva: number, level: number): number {
    const page = Math.floor(gva / PAGE_SIZE);
    const it = new TableIter(this.guestTables, (lo) => (lo & PTE_P) !== 0);
    for (it.start(this.spaces[space]!.pgd, this.levels, page, page + 1, level); it.valid; it.next()) {
      if (it.level === level) return it.table * PAGE_SIZE + it.index * 8;
      if (!it.present || it.leaf) return -1;
    }
    return -1;
  }

  /** A guest table read through QEMU's mapping, with no side effect; null if it was never written. */
  private readonly guestTables = (gfn: number): TableView | null => {
    const q = this.qemu;
    const p = q.host.probe(q.mm, q.gpaToHva(gfn * PAGE_SIZE));
    const mem = q.host.mem;
    return p.state === "present" && mem.isTable(p.pfn) ? { words: mem.words, off: mem.entryOffset(p.pfn, 0) } : null;
  };
}
