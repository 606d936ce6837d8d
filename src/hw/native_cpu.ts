// SPDX-License-Identifier: MIT
// A CPU on bare metal: physical == "guest-physical", an entry write is a plain frame write, and
// a real hw Mmu (paging "native") walks the tables the kernel built. The native baseline's CPUs
// (sim/native_twin.ts) and the guest kernel's tests run on it; several CPUs may share one
// PhysMem.

import { type Gfn, type Gpa, type Gva, PAGE_SIZE } from "./addr.js";
import type { Cpu } from "./cpu_port.js";
import { type MmuConfig, XLATE_GUEST_PF, defaultMmuConfig } from "./mmu.js";
import { type HwMmu, type MmuCore, createMmu } from "./mmu_core.js";
import { type PhysMem, WORDS_PER_TABLE } from "./phys_mem.js";

export interface NativeCpuOptions {
  levels: 4 | 5;
  /** CR4.PCIDE (default true). */
  pcide?: boolean;
  /** Overrides for the Mmu's configuration (TLB geometry, caches). */
  mmu?: Partial<MmuConfig>;
  /** The MMU implementation (default: the wasm core). */
  mmuCore?: MmuCore;
}

export class NativeCpu implements Cpu {
  readonly mmu: HwMmu;
  readonly pcide: boolean;
  lo = 0;
  hi = 0;
  error = "";
  /** Calls made through the port, for tests. */
  readonly calls = { readEntry: 0, writeEntry: 0, zeroPage: 0, copyPage: 0, loadCr3: 0, invlpg: 0, flushTlb: 0, ucall: 0 };

  constructor(
    readonly mem: PhysMem,
    opts: NativeCpuOptions,
  ) {
    this.mmu = createMmu(mem, defaultMmuConfig("native", { guestLevels: opts.levels, ...opts.mmu }), opts.mmuCore);
    this.pcide = opts.pcide ?? true;
    this.mmu.pcide = this.pcide;
  }

  /** The walk (or TLB hit) alone: a #PF is the kernel's to handle; nothing else can stop a native access. */
  access(gva: Gva, acc: number): number {
    return this.accessFrom(gva, this.mmu.access(gva, acc));
  }

  /** access() once the MMU gave `r` (a batch in the core may have made the try). */
  accessFrom(gva: number, r: number): number {
    if (r > XLATE_GUEST_PF) this.error = `unexpected translation outcome ${r} at gva 0x${gva.toString(16)}`;
    return r;
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
