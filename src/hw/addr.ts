// SPDX-License-Identifier: MIT
// Address kinds and the arithmetic on them. Addresses are plain numbers below 2^53;
// `&` and `>>>` see only the low 32 bits, so bits above 31 are taken by division.

declare const brand: unique symbol;
type Branded<T, B extends string> = T & { readonly [brand]: B };

/** Guest-virtual, guest-physical, host-virtual and host-physical addresses; guest and host frame numbers. */
export type Gva = Branded<number, "Gva">;
export type Gpa = Branded<number, "Gpa">;
export type Hva = Branded<number, "Hva">;
export type Hpa = Branded<number, "Hpa">;
export type Gfn = Branded<number, "Gfn">;
export type Pfn = Branded<number, "Pfn">;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PAGE_2M = 2 * 1024 * 1024;
export const PAGE_1G = 1024 * 1024 * 1024;
export const ENTRIES_PER_TABLE = 512;

/** 2^(12 + 9*(level-1)): the bytes one entry at `level` covers (level 1 = 4 KiB). */
export const LEVEL_SIZE: readonly number[] = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39, 2 ** 48, 2 ** 57];

/** 1 / LEVEL_SIZE: multiplying by a power of two is exact and several times cheaper than dividing. */
export const INV_LEVEL_SIZE: Float64Array = Float64Array.from(LEVEL_SIZE, (s) => (s === 0 ? 0 : 1 / s));
export const INV_PAGE_SIZE = 1 / 4096;

/** Index of `addr` in a table at `level` (1 = PT, 2 = PD, 3 = PDPT, 4 = PML4, 5 = PML5). */
export function tableIndex(addr: number, level: number): number {
  return Math.floor(addr * INV_LEVEL_SIZE[level]!) & 511;
}

/** Page size in bytes of a leaf at `level`. */
export function levelPageSize(level: number): number {
  return LEVEL_SIZE[level]!;
}

/** Level of a leaf of `size` bytes (4 KiB -> 1, 2 MiB -> 2, 1 GiB -> 3). */
export function pageSizeLevel(size: number): 1 | 2 | 3 {
  if (size === PAGE_SIZE) return 1;
  if (size === PAGE_2M) return 2;
  if (size === PAGE_1G) return 3;
  throw new RangeError(`no x86 page of ${size} bytes`);
}

export function pageFrame(addr: number): number {
  return Math.floor(addr / PAGE_SIZE);
}

/** Bytes of virtual address space with `levels` of paging: 2^48 or 2^57. */
export function vaBits(levels: number): number {
  return 12 + 9 * levels;
}

export function alignDown(addr: number, size: number): number {
  return addr - (addr % size);
}

/**
 * A canonical x86-64 address (sign-extended from bit 47 or 56) as the model's number:
 * the low 48 or 57 bits. Returns null if not canonical. Takes a BigInt because the upper
 * half of the address space is not exact in a double; this runs on input, never per access.
 */
export function fromCanonical(value: bigint, levels: 4 | 5): number | null {
  const bits = BigInt(vaBits(levels));
  if (value < 0n || value >= 1n << 64n) return null;
  const top = value >> (bits - 1n);
  const ones = (1n << (64n - bits + 1n)) - 1n;
  if (top !== 0n && top !== ones) return null;
  return Number(value & ((1n << bits) - 1n));
}

/** The canonical 64-bit form of a model address, for printing. */
export function toCanonical(addr: number, levels: 4 | 5): bigint {
  const bits = BigInt(vaBits(levels));
  const v = BigInt(addr);
  return (v >> (bits - 1n)) & 1n ? v | (((1n << 64n) - 1n) ^ ((1n << bits) - 1n)) : v;
}

export function hex(n: number | bigint, width = 0): string {
  return `0x${n.toString(16).padStart(width, "0")}`;
}
