// SPDX-License-Identifier: MIT
// The hugetlb pools (mm/hugetlb.c): 2 MiB and 1 GiB pages set aside by nr_hugepages,
// reserved at mmap(MAP_HUGETLB) time and handed out by hugetlb faults. Never on an LRU,
// never swapped. QEMU uses them for -mem-path /dev/hugepages or memory-backend-memfd,hugetlb.
//
// simplified: growing the pool takes free memory only (no reclaim or compaction); 1 GiB
// pages come from alloc_contig_pages() over free max-order blocks. No surplus pages, no
// per-node pools, no subpool/cgroup accounting.

import { PAGE_SIZE } from "../hw/addr.js";
import { MAX_ORDER } from "./buddy.js";
import type { HostKernel } from "./kernel.js";
import { zoneWatermarkOk } from "./page_alloc.js";
import { PG_head, PG_hugetlb, PG_tail } from "./page_flags.js";

export type HugetlbPageSize = 2097152 | 1073741824;

/** struct hstate for one huge page size. */
export class Hstate {
  /** nr_huge_pages. */
  nr = 0;
  /** free_huge_pages. */
  free = 0;
  /** resv_huge_pages: reserved by mmap, not yet faulted. */
  resv = 0;
  /** hugepage_freelists: head frames of free huge pages. */
  readonly freelist: number[] = [];

  constructor(
    readonly pageSize: HugetlbPageSize,
    readonly order: number,
  ) {}

  get pagesPerHuge(): number {
    return this.pageSize / PAGE_SIZE;
  }
}

export class HugetlbPool {
  private readonly h2 = new Hstate(2097152, 9);
  private readonly h1 = new Hstate(1073741824, 18);

  constructor(private readonly k: HostKernel) {}

  pool(pageSize: number): Hstate {
    if (pageSize === 2097152) return this.h2;
    if (pageSize === 1073741824) return this.h1;
    throw new RangeError(`no hugetlb page size of ${pageSize} bytes (2 MiB or 1 GiB)`);
  }

  isHugetlb(pfn: number): boolean {
    return (this.k.meta.flags[pfn]! & PG_hugetlb) !== 0;
  }

  /** set_max_huge_pages(): grow or shrink the pool towards `count`; returns nr_hugepages reached. */
  setPoolSize(pageSize: HugetlbPageSize, count: number): number {
    const h = this.pool(pageSize);
    const k = this.k;
    while (h.nr < count) {
      let pfn: number;
      if (h.order <= MAX_ORDER) pfn = zoneWatermarkOk(k, h.order, k.wmark.min) ? k.buddy.alloc(h.order) : -1;
      else pfn = k.buddy.nrFree - h.pagesPerHuge > k.wmark.min ? k.buddy.allocContig(h.order) : -1;
      if (pfn < 0) break;
      this.prepHuge(h, pfn);
      h.freelist.push(pfn);
      h.nr++;
      h.free++;
      if (k.bus.on) k.bus.emit("host.page_alloc", { pfn, order: h.order, purpose: "hugetlb_pool", free: k.buddy.nrFree });
    }
    // Shrink: only free, unreserved pages can go.
    while (h.nr > count && h.free > h.resv) {
      const pfn = h.freelist.pop()!;
      h.nr--;
      h.free--;
      this.unprepHuge(h, pfn);
      if (h.order <= MAX_ORDER) k.buddy.free(pfn, h.order);
      else k.buddy.freeContig(pfn, h.order);
    }
    return h.nr;
  }

  /** hugetlb_reserve_pages(): reserve `n` pages for a new mapping; false if the pool cannot promise them. */
  reserve(h: Hstate, n: number): boolean {
    if (h.free - h.resv < n) return false;
    h.resv += n;
    return true;
  }

  unreserve(h: Hstate, n: number): void {
    h.resv -= n;
  }

  /** alloc_hugetlb_folio(): a free huge page, using a reservation if the mapping holds one. -1 if none. */
  alloc(h: Hstate, useResv: boolean): number {
    if (!useResv && h.free - h.resv <= 0) return -1;
    const pfn = h.freelist.pop();
    if (pfn === undefined) return -1;
    h.free--;
    if (useResv) h.resv--;
    // clear_huge_page()
    for (let i = 0; i < h.pagesPerHuge; i++) this.k.mem.zeroFrame(pfn + i);
    return pfn;
  }

  /** free_huge_folio(): back to the pool. */
  freeHuge(h: Hstate, pfn: number): void {
    h.freelist.push(pfn);
    h.free++;
  }

  private prepHuge(h: Hstate, pfn: number): void {
    const m = this.k.meta;
    m.flags[pfn] = PG_hugetlb | PG_head;
    m.order[pfn] = h.order;
    m.mapcount[pfn] = 0;
    for (let i = 1; i < h.pagesPerHuge; i++) m.flags[pfn + i] = PG_tail;
  }

  private unprepHuge(h: Hstate, pfn: number): void {
    const m = this.k.meta;
    for (let i = 1; i < h.pagesPerHuge; i++) m.flags[pfn + i] = 0;
    m.flags[pfn] = 0;
  }
}
