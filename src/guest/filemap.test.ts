// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import { PhysMem } from "../hw/phys_mem.js";
import { PTE_D, PTE_P, PTE_RW } from "../hw/x86_pte.js";
import type { FaultResult } from "./fault.js";
import { type GuestDisk, SWAP_CLUSTER_MAX, filePageContent } from "./filemap.js";
import { GuestKernel } from "./kernel.js";
import { NativeCpu } from "../hw/native_cpu.js";
import { leafPfn } from "./pgtable.js";
import type { GuestProcess } from "./process.js";

const MiB = 1024 * 1024;

/** A guest on bare metal whose disk DMAs each file page's content tag into the frame. */
function machine(ram = 64 * MiB) {
  const mem = new PhysMem(ram);
  const port = new NativeCpu(mem, { levels: 4 });
  const reads: [gfn: number, ino: number, index: number][] = [];
  const disk: GuestDisk = {
    readPage(gfn, ino, index) {
      reads.push([gfn, ino, index]);
      mem.content[gfn] = filePageContent(ino, index);
    },
  };
  const k = new GuestKernel({ ram: [[0, ram]], cpus: [port], levels: 4, bus: new EventBus(), disk });
  const touch = (proc: GuestProcess, gva: number, write: boolean): "ok" | FaultResult => {
    k.contextSwitch(proc);
    for (let i = 0; i < 4; i++) {
      const r = port.mmu.access(gva, ACC_USER | (write ? ACC_WRITE : 0));
      if (r === XLATE_OK) return "ok";
      expect(r).toBe(XLATE_GUEST_PF);
      const res = k.handlePageFault(proc, port.mmu.faultGva, port.mmu.errorCode);
      if (res !== "fixed") return res;
    }
    throw new Error("fault loop");
  };
  /** The frame the PTE for `gva` maps, and the PTE's low word (-1, 0 if none). */
  const pte = (proc: GuestProcess, gva: number): [number, number] => {
    const gpa = k.pgtable.walk(port, proc, gva);
    if (gpa < 0 || (k.pgtable.lo & PTE_P) === 0) return [-1, 0];
    return [leafPfn(k.pgtable.lo, k.pgtable.hi, 1), k.pgtable.lo];
  };
  return { mem, port, k, reads, touch, pte };
}

describe("guest page cache: file mappings", () => {
  test("a read fault on a private file mapping reads each page from the disk once, into a frame of its own, mapped read-only", () => {
    const { mem, k, reads, touch, pte } = machine();
    const p = k.createProcess("a");
    const gva = k.mmap(p, "lib", 8 * PAGE_SIZE, { file: "libc.so", write: false });
    for (let i = 0; i < 8; i++) expect(touch(p, gva + i * PAGE_SIZE, false)).toBe("ok");
    for (let i = 0; i < 8; i++) expect(touch(p, gva + i * PAGE_SIZE + 8, false)).toBe("ok"); // TLB hits: no fault
    const s = k.stats;
    expect([s.pgmajfault, s.disk_reads, s.pgpgin, s.nr_file_pages, s.nr_mapped, s.pgfault]).toEqual([8, 8, 32, 8, 8, 8]);
    expect([p.RssFile, p.RssAnon, p.maj_flt, p.min_flt]).toEqual([8, 0, 8, 0]);
    const frames = new Set<number>();
    const ino = k.pageCache.file("libc.so")!.ino;
    for (let i = 0; i < 8; i++) {
      const [gfn, lo] = pte(p, gva + i * PAGE_SIZE);
      expect(lo & PTE_RW).toBe(0);
      expect(gfn).not.toBe(k.zeroGfn);
      expect(mem.content[gfn]).toBe(filePageContent(ino, i));
      frames.add(gfn);
    }
    expect(frames.size).toBe(8);
    expect(reads.map((r) => r[2])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test("a second mapping of the same file, in another process, shares the cache pages: no disk read, minor faults", () => {
    const { k, touch, pte } = machine();
    const a = k.createProcess("a");
    const b = k.createProcess("b");
    const ga = k.mmap(a, "lib", 4 * PAGE_SIZE, { file: "f" });
    const gb = k.mmap(b, "lib", 4 * PAGE_SIZE, { file: "f" });
    for (let i = 0; i < 4; i++) touch(a, ga + i * PAGE_SIZE, false);
    for (let i = 0; i < 4; i++) touch(b, gb + i * PAGE_SIZE, false);
    for (let i = 0; i < 4; i++) expect(pte(b, gb + i * PAGE_SIZE)[0]).toBe(pte(a, ga + i * PAGE_SIZE)[0]);
    expect([k.stats.pgmajfault, k.stats.nr_file_pages, k.stats.nr_mapped]).toEqual([4, 4, 4]);
    expect([b.maj_flt, b.min_flt, b.RssFile]).toEqual([0, 4, 4]);
    // A second mapping at a file offset: page 2 of the file is the same page.
    const gc = k.mmap(b, "tail", 2 * PAGE_SIZE, { file: "f", pgoff: 2 });
    touch(b, gc, false);
    expect(pte(b, gc)[0]).toBe(pte(a, ga + 2 * PAGE_SIZE)[0]);
    expect(k.stats.pgmajfault).toBe(4);
  });

  test("a write after a read of a private file page copies it (wp_page_copy); the cache page stays for the others", () => {
    const { mem, k, touch, pte, port } = machine();
    const a = k.createProcess("a");
    const b = k.createProcess("b");
    const ga = k.mmap(a, "data", PAGE_SIZE, { file: "f" });
    const gb = k.mmap(b, "data", PAGE_SIZE, { file: "f" });
    touch(a, ga, false);
    touch(b, gb, false);
    const cacheGfn = pte(a, ga)[0];
    const flushes = k.stats.nr_tlb_local_flush_one;
    expect(touch(a, ga, true)).toBe("ok");
    const [copy, lo] = pte(a, ga);
    expect(copy).not.toBe(cacheGfn);
    expect(lo & (PTE_RW | PTE_D)).toBe(PTE_RW | PTE_D);
    expect(mem.content[copy]).toBe(mem.content[cacheGfn]); // copy_user_highpage
    expect(port.calls.copyPage).toBe(1);
    expect(pte(b, gb)[0]).toBe(cacheGfn);
    expect(k.stats.nr_tlb_local_flush_one).toBe(flushes + 1); // ptep_clear_flush
    expect([k.stats.cow_faults, k.stats.nr_anon_pages, k.stats.nr_file_pages, k.stats.nr_mapped, k.stats.pgmajfault]).toEqual([
      1, 1, 1, 1, 1,
    ]);
    expect([a.RssFile, a.RssAnon, b.RssFile]).toEqual([0, 1, 1]);
  });

  test("a write first to a private file page reads it and maps a copy (do_cow_fault): the cache page is not mapped", () => {
    const { k, touch, pte } = machine();
    const a = k.createProcess("a");
    const g = k.mmap(a, "data", PAGE_SIZE, { file: "f" });
    expect(touch(a, g, true)).toBe("ok");
    const cache = k.pageCache.file("f")!.pages.get(0)!;
    expect(pte(a, g)[0]).not.toBe(cache);
    expect([k.stats.pgmajfault, k.stats.nr_file_pages, k.stats.nr_mapped, k.stats.cow_faults]).toEqual([1, 1, 0, 1]);
    expect([a.maj_flt, a.min_flt, a.RssAnon, a.RssFile]).toEqual([1, 0, 1, 0]);
  });

  test("a shared mapping writes the cache page itself and dirties it; other mappings see the same frame", () => {
    const { k, touch, pte } = machine();
    const a = k.createProcess("a");
    const b = k.createProcess("b");
    const ga = k.mmap(a, "shm", 2 * PAGE_SIZE, { file: "f", shared: true });
    const gb = k.mmap(b, "shm", 2 * PAGE_SIZE, { file: "f", shared: true });
    touch(a, ga, true); // do_shared_fault
    touch(b, gb, false); // do_read_fault: read-only (write-notify)
    expect(pte(b, gb)[1] & PTE_RW).toBe(0);
    touch(b, gb, true); // wp_page_shared
    const [gfn, lo] = pte(b, gb);
    expect(gfn).toBe(pte(a, ga)[0]);
    expect(lo & PTE_RW).toBe(PTE_RW);
    touch(b, gb + PAGE_SIZE, false);
    touch(b, gb + PAGE_SIZE, true);
    expect([k.stats.nr_dirty, k.stats.nr_file_pages, k.stats.cow_faults, k.stats.nr_anon_pages]).toEqual([2, 2, 0, 0]);
  });

  test("munmap and exit drop the mappings, not the cache pages", () => {
    const { k, touch } = machine();
    const a = k.createProcess("a");
    const g = k.mmap(a, "lib", 4 * PAGE_SIZE, { file: "f" });
    for (let i = 0; i < 4; i++) touch(a, g + i * PAGE_SIZE, false);
    touch(a, g, true); // one private copy
    const free = k.stats.nr_free_pages;
    k.munmap(a, g, 4 * PAGE_SIZE);
    // The copy and the PTE table go back to the allocator (the PMD, PUD stay: floor/ceiling), the cache pages stay.
    expect(k.stats.nr_free_pages - free).toBe(1 + 3);
    expect([k.stats.nr_file_pages, k.stats.nr_mapped, a.RssFile, k.stats.nr_anon_pages]).toEqual([4, 0, 0, 0]);
    const b = k.createProcess("b");
    const gb = k.mmap(b, "lib", 4 * PAGE_SIZE, { file: "f" });
    touch(b, gb + 3 * PAGE_SIZE, false);
    expect([k.stats.pgmajfault, b.min_flt]).toEqual([4, 1]);
    b.exit();
    expect([k.stats.nr_file_pages, k.stats.nr_mapped]).toEqual([4, 0]);
  });

  test("an access past the end of the file is SIGBUS", () => {
    const { k, touch } = machine();
    const a = k.createProcess("a");
    k.mmap(a, "small", PAGE_SIZE, { file: "f" });
    const g = k.mmap(a, "big", 2 * PAGE_SIZE, { file: "f" });
    expect(touch(a, g, false)).toBe("ok");
    expect(touch(a, g + PAGE_SIZE, false)).toBe("sigbus");
  });

  test("under memory pressure clean cache pages are dropped, unmapped ones first, and a later touch reads them again", () => {
    // 2 MiB of RAM, the first 1 MiB reserved: 256 frames. Boot takes 2 (swapper_pg_dir, zero page).
    const { k, touch, pte } = machine(2 * MiB);
    expect(k.stats.nr_free_pages).toBe(254);
    const a = k.createProcess("a"); // PGD: 253 free
    const old = k.mmap(a, "old", 40 * PAGE_SIZE, { file: "old" });
    for (let i = 0; i < 40; i++) touch(a, old + i * PAGE_SIZE, false); // PUD, PMD, PTE table + 40 pages: 210 free
    k.munmap(a, old, 40 * PAGE_SIZE); // the only VMA: its PTE, PMD and PUD tables go too (free_pgd_range): 213 free
    expect([k.stats.nr_free_pages, k.stats.nr_file_pages, k.stats.nr_mapped]).toEqual([213, 40, 0]);
    const g = k.mmap(a, "lib", 400 * PAGE_SIZE, { file: "lib" });
    // The first touch allocates the three tables again (210 free); 210 pages fill the allocator.
    for (let i = 0; i < 210; i++) touch(a, g + i * PAGE_SIZE, false);
    expect([k.stats.nr_free_pages, k.stats.pgsteal_direct]).toEqual([0, 0]);
    // The next page: direct reclaim takes SWAP_CLUSTER_MAX unmapped pages of "old" (the oldest), no mapped one.
    touch(a, g + 210 * PAGE_SIZE, false);
    expect(k.stats.pgsteal_direct).toBe(SWAP_CLUSTER_MAX);
    expect(k.pageCache.file("old")!.pages.size).toBe(40 - SWAP_CLUSTER_MAX);
    expect(k.stats.nr_free_pages).toBe(SWAP_CLUSTER_MAX - 1);
    // Use up the rest: 31 more pages, then 8 reclaimed from "old" with a pass that still finds 8 unmapped
    // ones and then 24 mapped ones of "lib", the oldest: pages 0..23 are unmapped (ptep_clear_flush) and freed.
    for (let i = 211; i < 242; i++) touch(a, g + i * PAGE_SIZE, false);
    const flushes = k.stats.nr_tlb_local_flush_one;
    touch(a, g + 242 * PAGE_SIZE, false);
    expect(k.stats.pgsteal_direct).toBe(2 * SWAP_CLUSTER_MAX);
    expect(k.pageCache.file("old")!.pages.size).toBe(0);
    expect(k.stats.nr_tlb_local_flush_one - flushes).toBe(24);
    expect(pte(a, g)[0]).toBe(-1);
    expect(pte(a, g + 24 * PAGE_SIZE)[0]).toBeGreaterThan(0);
    expect([a.RssFile, k.stats.nr_mapped, k.stats.nr_file_pages]).toEqual([243 - 24, 243 - 24, 243 - 24]);
    // Page 0 again: a major fault and a second disk read of the same page.
    const majBefore = k.stats.pgmajfault;
    expect(touch(a, g, false)).toBe("ok");
    expect(k.stats.pgmajfault - majBefore).toBe(1);
    expect([k.stats.pgmajfault, k.stats.disk_reads, k.stats.pgpgin]).toEqual([40 + 243 + 1, 284, 284 * 4]);
  });

  test("a dirty shared page is never dropped (no writeback); with nothing clean left the fault is OOM", () => {
    const { k, touch } = machine(2 * MiB);
    const a = k.createProcess("a");
    const g = k.mmap(a, "shm", 300 * PAGE_SIZE, { file: "f", shared: true });
    let i = 0;
    for (; i < 300; i++) if (touch(a, g + i * PAGE_SIZE, true) !== "ok") break;
    // 253 free after the PGD; PUD, PMD, PTE tables take 3: 250 pages, then nothing reclaimable.
    expect(i).toBe(250);
    expect([k.stats.nr_dirty, k.stats.pgsteal_direct]).toEqual([250, 0]);
  });
});
