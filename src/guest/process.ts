// SPDX-License-Identifier: MIT
// A guest process: its address space (struct mm_struct: PGD, VMAs, PCID context, RSS counters)
// and the system calls it makes on it, which the kernel carries out.
//
// simplified: one thread per process; no fork, so no copy-on-write sharing of anonymous pages and no anonymous rmap.

import type { Counters } from "../hw/counters.js";
import type { GuestKernel, MmapOptions } from "./kernel.js";
import type { MmStruct, Vma } from "./mm.js";
import { findVmaIndex } from "./vma.js";
import type { GUEST_PROCESS_STATS } from "./stats.js";

export class GuestProcess implements MmStruct, Counters<typeof GUEST_PROCESS_STATS> {
  readonly vmas: Vma[] = [];
  tlbGen = 0;
  VmPTE = 0;
  RssAnon = 0;
  HugetlbPages = 0;
  RssFile = 0;
  min_flt = 0;
  maj_flt = 0;
  alive = true;

  constructor(
    private readonly kernel: GuestKernel,
    readonly pid: number,
    readonly name: string,
    public pgd: number,
    public ctxId: number,
  ) {}

  /** The VMA that contains `gva`, or null. */
  findVma(gva: number): Vma | null {
    const i = findVmaIndex(this.vmas, gva);
    return i < 0 ? null : this.vmas[i]!;
  }

  /** mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS[|MAP_HUGETLB]): the gva. */
  mmap(name: string, size: number, opts: MmapOptions = {}): number {
    return this.kernel.mmap(this, name, size, opts);
  }

  munmap(gva: number, size: number, cpu = 0): void {
    this.kernel.munmap(this, gva, size, cpu);
  }

  exit(cpu = 0): void {
    this.kernel.exit(this, cpu);
  }
}
