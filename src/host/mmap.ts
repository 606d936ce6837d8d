// SPDX-License-Identifier: MIT
// Address-space operations (mm/mmap.c, mm/vma.c, mm/memory.c zap_*): mmap of private
// anonymous memory, munmap, exit_mmap, and the zap of a range that they and
// MADV_DONTNEED share.
//
// simplified: mmap_base is fixed (no ASLR): TASK_SIZE - 128 MiB, addresses handed out
// top-down; anon mappings whose length is a multiple of 2 MiB are 2 MiB aligned
// (thp_get_unmapped_area), hugetlb ones aligned to their page size. VMAs are never merged.
// simplified: free_pgtables() frees a table once no VMA overlaps the span it covers.

import { type Hva, LEVEL_SIZE, PAGE_2M, PAGE_SIZE, hex, tableIndex } from "../hw/addr.js";
import { WORDS_PER_TABLE } from "../hw/phys_mem.js";
import { PTE_P, PTE_PS, entryPfn } from "../hw/x86_pte.js";
import type { HugetlbPageSize } from "./hugetlb.js";
import { splitHugePmd } from "./huge_memory.js";
import type { HostKernel } from "./kernel.js";
import { type Mm, VM_ACCOUNT, VM_HUGEPAGE, VM_HUGETLB, VM_NOHUGEPAGE, VM_NORESERVE, VM_READ, VM_WRITE, Vma } from "./mm_types.js";
import { type MmuNotifyEvent, invalidateRangeEnd, invalidateRangeStart, notifierRelease } from "./mmu_notifier.js";
import { freePages } from "./page_alloc.js";
import { PG_lru, PG_swapcache } from "./page_flags.js";
import { leafPfn, swpOffset } from "./pgtable.js";
import { deleteFromSwapCache, folioFreeSwap } from "./swap_state.js";
import { handleMmFault, VM_FAULT_ERROR } from "./memory.js";

/** TASK_SIZE_MAX for 4-level paging. */
export const TASK_SIZE = 0x7ffffffff000;
/** mmap_base() without randomization: TASK_SIZE - MIN_GAP (128 MiB). */
export const MMAP_BASE = TASK_SIZE - 128 * 1024 * 1024;
/** vm.mmap_min_addr default. */
export const MMAP_MIN_ADDR = 0x10000;

export class MmError extends Error {
  constructor(
    readonly code: "ENOMEM" | "EINVAL" | "EEXIST",
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "MmError";
  }
}

export interface MmapOptions {
  /** MAP_NORESERVE: no commit accounting (and no hugetlb reservation). */
  noreserve?: boolean;
  /** MAP_POPULATE: fault every page in now (writable pages, as for a private writable mapping). */
  populate?: boolean;
  /** MAP_HUGETLB with MAP_HUGE_2MB or MAP_HUGE_1GB. */
  hugetlb?: HugetlbPageSize;
  /** An madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE) applied at creation. */
  thp?: "hugepage" | "nohugepage";
  /** MAP_FIXED_NOREPLACE at this address. */
  addr?: number;
}

function pageAlign(n: number, size: number): number {
  return Math.ceil(n / size) * size;
}

/** get_unmapped_area() top-down below mmap_base. */
function getUnmappedArea(mm: Mm, len: number, align: number): number {
  let end = MMAP_BASE;
  for (let i = mm.vmas.length - 1; i >= 0; i--) {
    const v = mm.vmas[i]!;
    if (v.start >= end) continue;
    if (v.end < end) {
      const s = end - len - ((end - len) % align);
      if (s >= v.end) return s;
    }
    end = Math.min(end, v.start);
  }
  const s = end - len - ((end - len) % align);
  if (s >= MMAP_MIN_ADDR) return s;
  throw new MmError("ENOMEM", `no ${len} bytes of free address space in mm ${mm.id}`);
}

/** do_mmap() of MAP_PRIVATE|MAP_ANONYMOUS memory with PROT_READ|PROT_WRITE. */
export function mmap(k: HostKernel, mm: Mm, length: number, opts: MmapOptions): Hva {
  if (mm.dead) throw new MmError("EINVAL", `mm ${mm.id} is gone`);
  if (!Number.isInteger(length) || length <= 0) throw new MmError("EINVAL", `bad length ${length}`);
  const hsize = opts.hugetlb ?? 0;
  if (hsize !== 0) k.hugetlb.pool(hsize); // validates the size
  const len = pageAlign(length, hsize || PAGE_SIZE);
  const align = hsize || (len % PAGE_2M === 0 ? PAGE_2M : PAGE_SIZE);
  let addr: number;
  if (opts.addr !== undefined) {
    addr = opts.addr;
    if (addr % align !== 0 || addr < MMAP_MIN_ADDR || addr + len > TASK_SIZE) throw new MmError("EINVAL", `bad fixed address ${hex(addr)}`);
    if (mm.overlaps(addr, addr + len)) throw new MmError("EEXIST", `${hex(addr)}+${len} overlaps an existing mapping`);
  } else {
    addr = getUnmappedArea(mm, len, align);
  }
  let flags = VM_READ | VM_WRITE;
  if (opts.noreserve) flags |= VM_NORESERVE;
  if (opts.thp === "hugepage") flags |= VM_HUGEPAGE;
  if (opts.thp === "nohugepage") flags |= VM_NOHUGEPAGE;
  const pages = len / PAGE_SIZE;
  let resv = 0;
  if (hsize !== 0) {
    flags |= VM_HUGETLB;
    if (!opts.noreserve) {
      resv = len / hsize;
      if (!k.hugetlb.reserve(k.hugetlb.pool(hsize), resv)) {
        throw new MmError("ENOMEM", `hugetlb pool of ${hsize} bytes cannot reserve ${resv} pages`);
      }
    }
  } else if (!opts.noreserve) {
    // __vm_enough_memory() with overcommit_memory = 0 (OVERCOMMIT_GUESS).
    const limit = k.managedPages + (k.swap ? k.swap.totalSwapPages : 0);
    if (pages > limit) throw new MmError("ENOMEM", `cannot commit ${pages} pages (RAM + swap is ${limit} pages)`);
    k.committedAs += pages;
    flags |= VM_ACCOUNT;
  }
  const vma = new Vma(addr, addr + len, flags, hsize === 0 ? 0 : Math.log2(hsize), resv);
  mm.insertVma(vma);
  mm.totalVm += pages;
  if (k.bus.on) k.bus.emit("host.mmap", { mm: mm.id, hva: addr, len, flags });
  if (opts.populate) populate(k, mm, addr, addr + len);
  return addr as Hva;
}

/** populate_vma_page_range(): fault every page in for writing; stops quietly at the first failure. */
function populate(k: HostKernel, mm: Mm, start: number, end: number): void {
  let addr = start;
  while (addr < end) {
    k.walk(mm, addr);
    const mapped = (k.wLo & PTE_P) !== 0 && (k.wLo & 2) !== 0;
    if (!mapped && (handleMmFault(k, mm, addr, true) & VM_FAULT_ERROR) !== 0) return;
    const level = k.hostPfnMappingLevel(mm, addr);
    const size = LEVEL_SIZE[level]!;
    addr = addr - (addr % size) + size;
  }
}

/** split_vma(): vma becomes [start, at) and a new VMA [at, end) is returned. */
function splitVma(k: HostKernel, mm: Mm, vma: Vma, at: number): Vma {
  const tail = new Vma(at, vma.end, vma.flags, vma.hugetlbShift, 0);
  if (vma.resv > 0) {
    tail.resv = Math.min(vma.resv, countHugetlbNone(k, mm, tail));
    vma.resv -= tail.resv;
  }
  vma.end = at;
  mm.insertVma(tail);
  return tail;
}

function countHugetlbNone(k: HostKernel, mm: Mm, vma: Vma): number {
  const size = 2 ** vma.hugetlbShift;
  let n = 0;
  for (let a = vma.start; a < vma.end; a += size) {
    k.walk(mm, a);
    if ((k.wLo & PTE_P) === 0) n++;
  }
  return n;
}

/** Splits VMAs so that `start` and `end` fall on VMA boundaries; returns the VMAs inside [start, end). */
export function vmasInRange(k: HostKernel, mm: Mm, start: number, end: number): Vma[] {
  for (const at of [start, end]) {
    const v = mm.findVma(at);
    if (v && v.start < at) {
      const unit = v.hugetlbShift ? 2 ** v.hugetlbShift : PAGE_SIZE;
      if (at % unit !== 0) throw new MmError("EINVAL", `${hex(at)} splits a hugetlb page`);
      splitVma(k, mm, v, at);
    }
  }
  return mm.vmas.filter((v) => v.start >= start && v.end <= end);
}

/** Frames to free once the invalidation is over (struct mmu_gather). */
export class MmuGather {
  readonly pfns: number[] = [];
}

/**
 * unmap_page_range() over [start, end) of one VMA: clears every entry, dropping rmap,
 * swap references (free_swap_and_cache) and hugetlb pages; anon folios are gathered in
 * `tlb` and freed by tlbFinishMmu(). A THP only partly in the range is split first.
 * The caller holds an invalidate_range_start covering the range (if the mm has notifiers).
 */
export function zapRange(k: HostKernel, mm: Mm, vma: Vma, start: number, end: number, tlb: MmuGather): void {
  const mem = k.mem;
  let addr = start;
  while (addr < end) {
    k.walk(mm, addr);
    const level = k.wLevel;
    const lo = k.wLo;
    const hi = k.wHi;
    if (level > 1) {
      const size = LEVEL_SIZE[level]!;
      const base = addr - (addr % size);
      if ((lo & PTE_P) === 0) {
        addr = base + size;
        continue;
      }
      if (base < start || base + size > end) {
        if (vma.hugetlbShift !== 0) throw new MmError("EINVAL", `partial unmap of a hugetlb page at ${hex(base)}`);
        splitHugePmd(k, mm, k.wTable, k.wIdx, base);
        continue;
      }
      zapHuge(k, mm, vma, k.wTable, k.wIdx, level, base, lo, hi, tlb);
      addr = base + size;
      continue;
    }
    // A PTE table: zap its entries in [addr, min(end, end of the table)).
    const table = k.wTable;
    const tableEnd = addr - (addr % PAGE_2M) + PAGE_2M;
    const stop = Math.min(end, tableEnd);
    for (let idx = tableIndex(addr, 1); addr < stop; idx++, addr += PAGE_SIZE) {
      const off = mem.entryOffset(table, idx);
      const elo = mem.words[off]!;
      const ehi = mem.words[off + 1]!;
      if (elo === 0 && ehi === 0) continue;
      k.setEntry(mm, table, idx, 1, addr, 0, 0);
      if ((elo & PTE_P) !== 0) {
        const pfn = entryPfn(elo, ehi);
        if (pfn !== k.zeroPfn) tlb.pfns.push(pfn);
      } else {
        freeSwapAndCache(k, swpOffset(elo, ehi));
      }
    }
  }
}

/** zap_huge_pmd() / the hugetlb unmap of one huge leaf. */
function zapHuge(
  k: HostKernel,
  mm: Mm,
  vma: Vma,
  table: number,
  idx: number,
  level: number,
  base: number,
  lo: number,
  hi: number,
  tlb: MmuGather,
): void {
  const pfn = leafPfn(lo, hi, level);
  k.setEntry(mm, table, idx, level, base, 0, 0);
  if (vma.hugetlbShift !== 0) {
    k.hugetlb.freeHuge(k.hugetlb.pool(LEVEL_SIZE[level]!), pfn);
    return;
  }
  const dep = mm.deposited.get(base);
  if (dep !== undefined) {
    mm.deposited.delete(base);
    k.pteFree(mm, dep); // zap_deposited_table()
  }
  if (pfn !== k.hugeZeroPfn) tlb.pfns.push(pfn);
}

/** free_swap_and_cache(): drop a swap PTE's reference; an unmapped swap-cache folio left alone goes too. */
export function freeSwapAndCache(k: HostKernel, slot: number): void {
  const swap = k.swap!;
  swap.free(slot);
  if (swap.count(slot) === 0) {
    const pfn = swap.cache[slot]!;
    if (pfn !== 0 && k.meta.mapcount[pfn] === 0) {
      // __try_to_reclaim_swap(): nobody maps it any more.
      deleteFromSwapCache(k, pfn, 0);
      freeFolio(k, pfn);
    } else if (pfn === 0 && k.bus.on) {
      k.bus.emit("host.swap_free", { slot, free: swap.nrSwapPages });
    }
  }
}

/** The last reference to a folio is gone: off the LRU and back to the allocator. */
export function freeFolio(k: HostKernel, pfn: number): void {
  const m = k.meta;
  if ((m.flags[pfn]! & PG_lru) !== 0) k.lru.del(pfn);
  const order = m.order[pfn]!;
  m.flags[pfn] = 0;
  freePages(k, pfn, order);
}

/** tlb_finish_mmu() -> free_pages_and_swap_cache(): free the gathered folios (after the TLB flush and invalidate_range_end). */
export function tlbFinishMmu(k: HostKernel, tlb: MmuGather): void {
  const m = k.meta;
  for (const pfn of tlb.pfns) {
    if (m.mapcount[pfn] !== 0) continue;
    if ((m.flags[pfn]! & PG_swapcache) !== 0 && !folioFreeSwap(k, pfn)) continue;
    freeFolio(k, pfn);
  }
  tlb.pfns.length = 0;
}

/** zap_page_range_single() with its notifier range (MADV_DONTNEED, munmap of one VMA piece). */
export function zapWithNotify(k: HostKernel, mm: Mm, vmas: readonly Vma[], start: number, end: number, event: MmuNotifyEvent): void {
  const tlb = new MmuGather();
  const range = { mm, start, end, event };
  invalidateRangeStart(k.bus, mm.notifiers, range);
  for (const v of vmas) zapRange(k, mm, v, Math.max(start, v.start), Math.min(end, v.end), tlb);
  invalidateRangeEnd(k.bus, mm.notifiers, range);
  tlbFinishMmu(k, tlb);
}

/** Releases hugetlb reservations of unfaulted pages and commit charge of a VMA going away. */
function unaccountVma(k: HostKernel, vma: Vma): void {
  if ((vma.flags & VM_ACCOUNT) !== 0) k.committedAs -= vma.length / PAGE_SIZE;
  if ((vma.flags & VM_HUGETLB) !== 0 && vma.resv > 0) {
    k.hugetlb.unreserve(k.hugetlb.pool(2 ** vma.hugetlbShift), vma.resv);
    vma.resv = 0;
  }
}

/** do_vmi_munmap() -> unmap_region(): one MMU_NOTIFY_UNMAP range over [addr, addr+len), then free_pgtables(). */
export function munmap(k: HostKernel, mm: Mm, addr: number, length: number): void {
  if (addr % PAGE_SIZE !== 0 || length <= 0) throw new MmError("EINVAL", `munmap(${hex(addr)}, ${length})`);
  if (mm.dead) return;
  const end = addr + pageAlign(length, PAGE_SIZE);
  const vmas = vmasInRange(k, mm, addr, end);
  if (vmas.length === 0) return;
  // Reservations of unfaulted hugetlb pages in the range are returned below, with the VMAs.
  for (const v of vmas) if (v.resv > 0) v.resv = Math.min(v.resv, countHugetlbNone(k, mm, v));
  zapWithNotify(k, mm, vmas, addr, end, "unmap");
  for (const v of vmas) {
    unaccountVma(k, v);
    mm.vmas.splice(mm.vmas.indexOf(v), 1);
    mm.totalVm -= v.length / PAGE_SIZE;
  }
  freePgtables(k, mm, addr, end);
  if (k.bus.on) k.bus.emit("host.munmap", { mm: mm.id, hva: addr, len: end - addr });
}

function tableEmpty(k: HostKernel, pfn: number): boolean {
  const w = k.mem.words;
  const off = k.mem.entryOffset(pfn, 0);
  for (let i = 0; i < WORDS_PER_TABLE; i++) if (w[off + i] !== 0) return false;
  return true;
}

/** free_pgtables() for [start, end): frees tables whose whole span no VMA overlaps. */
export function freePgtables(k: HostKernel, mm: Mm, start: number, end: number): void {
  freeLevel(k, mm, mm.pgd, 4, 0, start, end);
}

function freeLevel(k: HostKernel, mm: Mm, table: number, level: number, base: number, start: number, end: number): void {
  const size = LEVEL_SIZE[level]!;
  const i0 = Math.max(0, Math.floor((start - base) / size));
  const i1 = Math.min(511, Math.floor((end - 1 - base) / size));
  for (let i = i0; i <= i1; i++) {
    const lo = k.mem.readLo(table, i);
    if ((lo & PTE_P) === 0 || (lo & PTE_PS) !== 0) continue;
    const child = entryPfn(lo, k.mem.readHi(table, i));
    const childBase = base + i * size;
    if (level > 2) freeLevel(k, mm, child, level - 1, childBase, start, end);
    if (!mm.overlaps(childBase, childBase + size) && tableEmpty(k, child)) {
      k.setEntry(mm, table, i, level, childBase, 0, 0);
      k.pteFree(mm, child);
    }
  }
}

/** exit_mmap(): mmu_notifier_release first, then unmap everything and free every table. */
export function exitMmap(k: HostKernel, mm: Mm): void {
  if (mm.dead) return;
  notifierRelease(k.bus, mm.notifiers, mm);
  const tlb = new MmuGather();
  for (const v of mm.vmas) zapRange(k, mm, v, v.start, v.end, tlb);
  tlbFinishMmu(k, tlb);
  for (const v of mm.vmas) unaccountVma(k, v);
  const total = mm.vmas.length;
  mm.vmas.length = 0;
  mm.totalVm = 0;
  freePgtables(k, mm, 0, 2 ** 48);
  for (const [, pt] of mm.deposited) k.pteFree(mm, pt);
  mm.deposited.clear();
  if (!tableEmpty(k, mm.pgd)) throw new Error(`mm ${mm.id}: page tables left after exit_mmap`);
  k.pteFree(mm, mm.pgd);
  mm.dead = true;
  k.forgetMm(mm);
  if (k.bus.on) k.bus.emit("host.exit", { mm: mm.id, name: mm.name, vmas: total });
}

/** Whether an address range is entirely covered by VMAs. */
export function rangeMapped(mm: Mm, start: number, end: number): boolean {
  let a = start;
  while (a < end) {
    const v = mm.findVma(a);
    if (!v) return false;
    a = v.end;
  }
  return true;
}
