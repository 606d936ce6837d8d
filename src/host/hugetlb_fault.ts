// SPDX-License-Identifier: MIT
// hugetlb_fault() (mm/hugetlb.c) for private MAP_HUGETLB mappings: a huge PMD (2 MiB) or
// huge PUD (1 GiB) leaf backed by a pool page. Reads allocate too (no zero page); a
// private read fault maps read-only and the first write makes it writable (hugetlb_wp
// reusing the exclusive page).

import { LEVEL_SIZE, PAGE_SIZE, tableIndex } from "../hw/addr.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, frameHi, frameLo } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import type { Mm, Vma } from "./mm_types.js";
import { PAGE_COPY_LO, PAGE_NX_HI, PAGE_RW_DIRTY_LO } from "./pgtable.js";

const VM_FAULT_OOM = 0x1;
const VM_FAULT_SIGBUS = 0x2;

export function hugetlbFault(k: HostKernel, mm: Mm, vma: Vma, addr: number, write: boolean): number {
  const size = 2 ** vma.hugetlbShift;
  const level = vma.hugetlbShift === 21 ? 2 : 3;
  const haddr = addr - (addr % size);
  const table = k.tableAlloc(mm, addr, level);
  if (table < 0) return VM_FAULT_OOM;
  const idx = tableIndex(addr, level);
  const lo = k.mem.readLo(table, idx);
  const hi = k.mem.readHi(table, idx);
  if ((lo & PTE_P) === 0) {
    // hugetlb_no_page()
    const h = k.hugetlb.pool(size);
    const useResv = vma.resv > 0;
    const pfn = k.hugetlb.alloc(h, useResv);
    if (pfn < 0) return VM_FAULT_SIGBUS;
    if (useResv) vma.resv--;
    const flags = (write ? PAGE_RW_DIRTY_LO : PAGE_COPY_LO) | PTE_PS;
    k.setEntry(mm, table, idx, level, haddr, frameLo(pfn, flags), frameHi(pfn, PAGE_NX_HI));
    if (k.bus.on) k.bus.emit("host.hugetlb_fault", { mm: mm.id, hva: haddr, pfn, pages: LEVEL_SIZE[level]! / PAGE_SIZE });
    return 0;
  }
  // hugetlb_wp() on the exclusive page, or just the accessed/dirty bits.
  const want = (lo | PTE_A | (write ? PTE_RW | PTE_D : 0)) >>> 0;
  k.setEntry(mm, table, idx, level, haddr, want, hi);
  return 0;
}
