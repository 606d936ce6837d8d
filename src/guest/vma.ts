// SPDX-License-Identifier: MIT
// A process's VMAs as a sorted array, and the layout rules of mm/mmap.c: top-down placement
// below mmap_base (vm_unmapped_area with VM_UNMAPPED_AREA_TOPDOWN), huge-page alignment, and
// the VMA splits an unmap makes at its edges.
//
// simplified: VMAs never merge (vma_merge); no stack guard gap; no ASLR.

import { PAGE_SIZE, alignDown } from "../hw/addr.js";
import type { Vma } from "./mm.js";

/** mmap_min_addr. */
export const MMAP_MIN_ADDR = 0x10000;
/** mmap_base without randomization: TASK_SIZE - 128 MiB gap (0x7ffff7fff000, the address gdb users know). */
export const DEFAULT_MMAP_BASE = 0x7ffff7fff000;

/** Index of the VMA containing `addr`, or -1 (find_vma + the vm_start check). */
export function findVmaIndex(vmas: readonly Vma[], addr: number): number {
  let lo = 0;
  let hi = vmas.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = vmas[mid]!;
    if (addr < v.start) hi = mid - 1;
    else if (addr >= v.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Index of the first VMA that ends above `addr` (where a VMA starting at addr would go). */
export function firstEndingAbove(vmas: readonly Vma[], addr: number): number {
  let lo = 0;
  let hi = vmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (vmas[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The highest `len`-byte hole aligned to `align` below `base` and above mmap_min_addr; -1 if none. */
export function unmappedAreaTopdown(vmas: readonly Vma[], len: number, align: number, base: number): number {
  let gapEnd = base;
  for (let i = vmas.length - 1; i >= -1; i--) {
    let gapStart = MMAP_MIN_ADDR;
    if (i >= 0) {
      const v = vmas[i]!;
      if (v.start >= gapEnd) continue;
      gapStart = Math.max(v.end, MMAP_MIN_ADDR);
    }
    const candidate = alignDown(gapEnd - len, align);
    if (gapEnd - len >= 0 && candidate >= gapStart) return candidate;
    if (i >= 0) gapEnd = vmas[i]!.start;
  }
  return -1;
}

/** True if [start, end) overlaps no VMA. */
export function rangeIsFree(vmas: readonly Vma[], start: number, end: number): boolean {
  const i = firstEndingAbove(vmas, start);
  return i >= vmas.length || vmas[i]!.start >= end;
}

export function insertVma(vmas: Vma[], v: Vma): void {
  vmas.splice(firstEndingAbove(vmas, v.start), 0, v);
}

/**
 * Takes [start, end) out of `vmas`, splitting the VMAs that straddle its edges (__split_vma).
 * Returns the removed pieces in address order. Throws, changing nothing, if an edge falls
 * inside a huge page of a hugetlb VMA (hugetlb_vm_op_split's -EINVAL).
 */
export function detachRange(vmas: Vma[], start: number, end: number): Vma[] {
  const first = firstEndingAbove(vmas, start);
  let last = first;
  while (last < vmas.length && vmas[last]!.start < end) last++;
  if (first === last) return [];
  for (let i = first; i < last; i++) {
    const v = vmas[i]!;
    const size = hugeSize(v);
    for (const edge of [start, end]) {
      if (edge > v.start && edge < v.end && edge % size !== 0)
        throw new RangeError(`munmap edge 0x${edge.toString(16)} splits a huge page of VMA "${v.name}"`);
    }
  }
  const kept: Vma[] = [];
  const removed: Vma[] = [];
  for (let i = first; i < last; i++) {
    const v = vmas[i]!;
    if (v.start < start) kept.push({ ...v, end: start });
    removed.push(sliceVma(v, Math.max(v.start, start), Math.min(v.end, end)));
    if (v.end > end) kept.push(sliceVma(v, end, v.end));
  }
  vmas.splice(first, last - first, ...kept);
  return removed;
}

export function hugeSize(v: Vma): number {
  return v.pageLevel === 1 ? PAGE_SIZE : v.pageLevel === 2 ? 2 ** 21 : 2 ** 30;
}

/** The part [start, end) of `v`; a file VMA's vm_pgoff moves with its start, as __split_vma does. */
function sliceVma(v: Vma, start: number, end: number): Vma {
  const out = { ...v, start, end };
  if (v.pgoff !== undefined) out.pgoff = v.pgoff + (start - v.start) / PAGE_SIZE;
  return out;
}
