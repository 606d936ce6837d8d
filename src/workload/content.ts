// SPDX-License-Identifier: MIT
// What a workload's writes put in the page: the value each write stores, by content class.
// A page's content is the last value written to it (hw/phys_mem.ts), so two pages written
// with the same class value are identical to the host (KSM merges them).

/** Every write a value of its own (the default). */
export const CONTENT_UNIQUE = 0;
/** Every write stores zero: the page stays all zeros. */
export const CONTENT_ZERO = 1;
/** Page i of the address space holds class (i mod N): N distinct page contents, the same in every process and VM. */
export const CONTENT_DUP = 2;

/** The value a CONTENT_DUP write at `gva` stores: nonzero, the same for every page of class (vpn mod n). */
export function dupContent(gva: number, n: number): number {
  const cls = Math.floor(gva / 4096) % n;
  return (Math.imul(cls + 1, 0x85ebca6b) | 1) >>> 0;
}
