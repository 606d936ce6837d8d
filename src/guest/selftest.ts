// SPDX-License-Identifier: MIT
// A guest with no kernel, like the guest code of KVM's selftests (demand_paging_test,
// access_tracking_perf_test, dirty_log_perf_test): the VMM built its page tables before the
// run, and the guest code only loads and stores, plus the explicit operations here: a store
// to one of its page-table entries, INVLPG, MOV to CR3, and a ucall to the VMM (GUEST_SYNC).
// Everything goes through the CPU port, so under shadow paging KVM traps what it must.
//
// simplified: the guest stores to a table entry through an address the VMM handed it (the entry's gpa), as the guest kernel's direct map does.
// simplified: with PCIDs on, space i runs with PCID i + 1; a cleared entry (present: false) is written as 0.

import type { Gfn, Gpa, Gva } from "../hw/addr.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, frameHi, frameLo } from "../hw/x86_pte.js";
import type { CpuPort } from "../hw/cpu_port.js";
import { newSelftestStats } from "./stats.js";

/** A region the VMM mapped: `level` 1 (4 KiB pages) or 2 (2 MiB pages), at guest-physical `gpa`. */
export interface SelftestRegion {
  readonly name: string;
  readonly gva: number;
  readonly size: number;
  readonly level: 1 | 2;
  readonly user: boolean;
  readonly gpa: number;
  /** Index of the space whose tables map it. */
  readonly space: number;
}

export interface SelftestSpace {
  readonly name: string;
  /** Guest frame of the root table. */
  readonly pgd: number;
  readonly regions: readonly SelftestRegion[];
  /** The PTs the VMM made, by gva / 2 MiB. */
  readonly pts: ReadonlyMap<number, number>;
}

/** What the VMM tells the guest code: the spaces it built, and where an entry is. */
export interface SelftestLayout {
  readonly spaces: readonly SelftestSpace[];
  /** Guest-physical address of the entry at `level` mapping `gva` in space `space`; -1 if a table on the way is missing. */
  entryGpa(space: number, gva: number, level: number): number;
}

/** The flags of an entry the guest code writes. */
export interface EntryFlags {
  present: boolean;
  writable: boolean;
  accessed: boolean;
  dirty: boolean;
}

export class SelftestGuest {
  readonly stats = newSelftestStats();
  /** The space each CPU runs in (-1: CR3 not set). */
  readonly current: Int32Array;
  private readonly regions = new Map<string, SelftestRegion>();

  constructor(
    readonly layout: SelftestLayout,
    readonly cpus: readonly CpuPort[],
  ) {
    this.current = new Int32Array(cpus.length).fill(-1);
    for (const sp of layout.spaces) for (const r of sp.regions) this.regions.set(r.name, r);
  }

  region(name: string): SelftestRegion {
    const r = this.regions.get(name);
    if (r === undefined) throw new RangeError(`no region named "${name}"`);
    return r;
  }

  space(name: string): number {
    const i = this.layout.spaces.findIndex((s) => s.name === name);
    if (i < 0) throw new RangeError(`no space named "${name}"`);
    return i;
  }

  /** The PCID space `space` runs with on CPU `cpu`: 0 without CR4.PCIDE. */
  pcidOf(cpu: number, space: number): number {
    return this.cpus[cpu]!.pcide ? space + 1 : 0;
  }

  /** The VMM set CPU `cpu`'s CR3 before the run (KVM_SET_SREGS): nothing the guest does. */
  started(cpu: number, space: number): void {
    this.current[cpu] = space;
  }

  /** The guest virtual address of page `page` of region `r` (in its page size). */
  pageGva(r: SelftestRegion, page: number): number {
    return r.gva + page * (r.level === 2 ? 2 ** 21 : 4096);
  }

  /**
   * A guest store to the entry at `level` (1: PTE, 2: PDE) above page `page` of region `r`:
   * a leaf maps the page's own frame; a PDE above a 4 KiB region points at its PT. Returns
   * false if a table on the way was cleared earlier.
   */
  setEntry(cpu: number, r: SelftestRegion, page: number, level: 1 | 2, f: EntryFlags): boolean {
    const gva = this.pageGva(r, page);
    const gpa = this.layout.entryGpa(r.space, gva, level);
    if (gpa < 0) return false;
    let lo = 0;
    let hi = 0;
    if (f.present) {
      const leaf = level === r.level;
      const gfn = leaf ? (r.gpa + (gva - r.gva)) / 4096 : this.layout.spaces[r.space]!.pts.get(Math.floor(gva / 2 ** 21))!;
      const flags =
        PTE_P |
        (f.writable ? PTE_RW : 0) |
        (leaf ? (r.user ? PTE_US : 0) : PTE_US) |
        (f.accessed ? PTE_A : 0) |
        (leaf && f.dirty ? PTE_D : 0) |
        (leaf && level > 1 ? PTE_PS : 0);
      lo = frameLo(gfn, flags);
      hi = frameHi(gfn);
    }
    this.cpus[cpu]!.writeEntry(gpa as Gpa, lo, hi);
    if (level === 1) this.stats.pte_writes++;
    else this.stats.pde_writes++;
    return true;
  }

  /** INVLPG of page `page` of region `r`. */
  invlpg(cpu: number, r: SelftestRegion, page: number): void {
    this.cpus[cpu]!.invlpg(this.pageGva(r, page) as Gva);
    this.stats.invlpg++;
  }

  /** MOV to CR3 of space `space`'s root (its PCID and the no-flush bit with CR4.PCIDE). */
  loadCr3(cpu: number, space: number, noFlush: boolean): void {
    const port = this.cpus[cpu]!;
    port.loadCr3(this.layout.spaces[space]!.pgd as Gfn, this.pcidOf(cpu, space), port.pcide && noFlush);
    this.current[cpu] = space;
    this.stats.cr3_loads++;
  }

  /** A ucall (GUEST_SYNC): an exit to the VMM that changes nothing. */
  ucall(cpu: number): void {
    this.cpus[cpu]!.ucall();
    this.stats.ucalls++;
  }
}
