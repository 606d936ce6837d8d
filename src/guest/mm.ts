// SPDX-License-Identifier: MIT
// What the page-table, TLB and fault code need to know of an address space (the guest's
// struct mm_struct), and its VMAs (struct vm_area_struct). GuestProcess implements MmStruct;
// the kernel's own init_mm is a bare MmStruct with no VMAs.

export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
/** MAP_SHARED: writes go to the page cache page, not a private copy. */
export const VM_SHARED = 0x8;
export const VM_HUGETLB = 0x400000;

export interface MmStruct {
  /** Owner's pid; 0 for init_mm. */
  readonly pid: number;
  /** Guest frame of the top-level table (mm->pgd). */
  pgd: number;
  /** Unique forever (mm->context.ctx_id): PCID slots are matched by it. */
  readonly ctxId: number;
  /** Bumped on every flush request (mm->context.tlb_gen). */
  tlbGen: number;
  /** Page-table pages of this mm, the PGD included. */
  VmPTE: number;
  /** Anonymous 4 KiB pages mapped (MM_ANONPAGES). */
  RssAnon: number;
  /** 4 KiB pages covered by mapped huge pages. */
  HugetlbPages: number;
  /** Page-cache pages mapped (MM_FILEPAGES). */
  RssFile: number;
}

/** A file of the guest's filesystem (struct inode + its address_space), see filemap.ts. */
export interface GuestFile {
  /** Inode number: unique per file for the kernel's life. */
  readonly ino: number;
  readonly name: string;
  /** Bytes (i_size); pages at or past it SIGBUS. */
  size: number;
  /** The page cache (i_pages): page index -> guest frame. */
  readonly pages: Map<number, number>;
}

export interface Vma {
  start: number;
  end: number;
  readonly name: string;
  /** VM_* bits. */
  readonly flags: number;
  /** Leaf level the VMA maps with: 1 (4 KiB), 2 (2 MiB hugetlb), 3 (1 GiB hugetlb). */
  readonly pageLevel: 1 | 2 | 3;
  /** The mapped file (vm_file); absent for anonymous memory. */
  readonly file?: GuestFile;
  /** File page mapped at `start` (vm_pgoff). */
  pgoff?: number;
}
