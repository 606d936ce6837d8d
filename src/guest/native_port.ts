// SPDX-License-Identifier: MIT
// The guest CPU port on bare metal: guest-physical == host-physical, an entry write is a plain
// frame write, and a real hw Mmu (paging "native") walks the tables the guest built. For tests
// and for the native baseline run; several ports may share one PhysMem (one per CPU).

import { type Gfn, type Gpa, type Gva, PAGE_SIZE } from "../hw/addr.js";
import { type MmuConfig, defaultMmuConfig } from "../hw/mmu.js";
import { type HwMmu, type MmuCore, createMmu } from "../hw/mmu_core.js";
import { type PhysMem, WORDS_PER_TABLE } from "../hw/phys_mem.js";
import type { GuestCpuPort } from "./cpu_port.js";

export interface NativePortOptions {
  levels: 4 | 5;
  /** CR4.PCIDE (default true). */
  pcide?: boolean;
  /** Overrides for the Mmu's configuration (TLB geometry, caches). */
  mmu?: Partial<MmuConfig>;
  /** The MMU implementation (default: the wasm core). */
  mmuCore?: MmuCore;
}

export class NativeCpuPort implements GuestCpuPort {
  readonly mmu: HwMmu;
  readonly pcide: boolean;
  lo = 0;
  hi = 0;
  /** Calls made through the port, for tests. */
  readonly calls = { readEntry: 0, writeEntry: 0, zeroPage: 0, copyPage: 0, loadCr3: 0, invlpg: 0, flushTlb: 0, ucall: 0 };

  constructor(
    readonly mem: PhysMem,
    opts: NativePortOptions,
  ) {
    this.mmu = createMmu(mem, defaultMmuConfig("native", { guestLevels: opts.levels, ...opts.mmu }), opts.mmuCore);
    this.pcide = opts.pcide ?? true;
    this.mmu.pcide = this.pcide;
  }

  readEntry(gpa: Gpa): void {
    this.calls.readEntry++;
    const pfn = Math.floor(gpa / PAGE_SIZE);
    const mem = this.mem;
    if (!mem.isTable(pfn)) {
      // A frame no entry was ever written to holds zeroes (it was cleared when allocated).
      this.lo = 0;
      this.hi = 0;
      return;
    }
    const off = mem.entryOffset(pfn, (gpa - pfn * PAGE_SIZE) / 8);
    this.lo = mem.words[off]!;
    this.hi = mem.words[off + 1]!;
  }

  writeEntry(gpa: Gpa, lo: number, hi: number): void {
    this.calls.writeEntry++;
    const pfn = Math.floor(gpa / PAGE_SIZE);
    if (!this.mem.isTable(pfn)) {
      this.mem.allocTable(pfn);
      // PhysMem.allocTable() leaves a never-used slot as it finds it, which after PhysMem.restore()
      // can hold a later table's words: clear it, as the page was cleared when allocated.
      const off = this.mem.entryOffset(pfn, 0);
      this.mem.words.fill(0, off, off + WORDS_PER_TABLE);
    }
    this.mem.writeEntry(pfn, (gpa - pfn * PAGE_SIZE) / 8, lo, hi);
  }

  zeroPage(gfn: Gfn): void {
    this.calls.zeroPage++;
    this.mem.zeroFrame(gfn);
  }

  copyPage(dst: Gfn, src: Gfn): void {
    this.calls.copyPage++;
    this.mem.copyFrame(dst, src);
  }

  loadCr3(rootGfn: Gfn, pcid: number, noFlush: boolean): void {
    this.calls.loadCr3++;
    this.mmu.loadCr3(rootGfn, pcid, noFlush);
  }

  invlpg(gva: Gva): void {
    this.calls.invlpg++;
    this.mmu.invlpg(gva);
  }

  flushTlb(): void {
    this.calls.flushTlb++;
    this.mmu.loadCr3(this.mmu.cr3Frame, this.mmu.pcid, false);
  }

  ucall(): void {
    this.calls.ucall++;
  }
}
