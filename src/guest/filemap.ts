// SPDX-License-Identifier: MIT
// The guest's page cache (mm/filemap.c): the files of its filesystem, each page read from the
// virtual disk into a guest frame of its own the first time a fault needs it (filemap_fault ->
// filemap_read_folio), found again by later faults of any mapping of the file, and dropped when
// the buddy allocator runs dry (direct reclaim: shrink_folio_list -> try_to_unmap ->
// __remove_mapping), to be read again on the next fault.
//
// simplified: no readahead and no fault-around: a fault reads and maps exactly one page.
// simplified: no writeback: a page dirtied through a shared mapping stays in the cache for good.
// simplified: one LRU list, oldest first, unmapped pages before mapped ones (no referenced-bit aging, no active list).
// simplified: rmap walks look at every process's VMAs (no i_mmap interval tree).

import { PAGE_SIZE } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import { PTE_A, PTE_P } from "../hw/x86_pte.js";
import type { CpuPort } from "../hw/cpu_port.js";
import type { GuestEventMap } from "./guest_events.js";
import type { GuestFile, MmStruct, Vma } from "./mm.js";
import { type GuestPgtable, type PageCacheRmap, leafPfn } from "./pgtable.js";
import type { GuestStats } from "./stats.js";
import type { GuestTlb } from "./tlb.js";

/** The guest's virtual disk (virtio-blk): DMA of one file page into a guest frame. */
export interface GuestDisk {
  /** Reads page `index` of file `ino` into guest frame `gfn` (the frame then holds the file's data). */
  readPage(gfn: number, ino: number, index: number): void;
}

/** A disk whose reads only take time: the frame's content is left as it was (unit tests that count). */
export const NULL_DISK: GuestDisk = { readPage() {} };

/** SWAP_CLUSTER_MAX: pages one direct-reclaim pass tries to free. */
export const SWAP_CLUSTER_MAX = 32;

/** The content tag of page `index` of file `ino` as the disk holds it: even and non-zero (user writes are odd). */
export function filePageContent(ino: number, index: number): number {
  const h = (Math.imul(ino, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35) ^ ((index / 0x100000000) | 0)) >>> 0;
  return (h & ~1) >>> 0 || 2;
}

/** A process's address space as rmap needs it. */
export interface RmapMm extends MmStruct {
  readonly vmas: readonly Vma[];
}

interface CachePage {
  readonly file: GuestFile;
  readonly index: number;
  /** page_mapcount(): PTEs mapping the page. */
  mapcount: number;
  /** PG_dirty (written through a shared mapping). */
  dirty: boolean;
}

export interface PageCacheSnapshot {
  nextIno: number;
  files: { ino: number; name: string; size: number }[];
  pages: [gfn: number, ino: number, index: number, mapcount: number, dirty: boolean][];
}

export class GuestPageCache implements PageCacheRmap {
  private readonly files = new Map<string, GuestFile>();
  /** Every page-cache page by frame, in LRU order (oldest first). */
  private readonly lru = new Map<number, CachePage>();
  private nextIno = 12; // EXT4_GOOD_OLD_FIRST_INO + 1: the first regular file of a fresh ext4
  /** The frame a fault in progress holds (folio lock and reference): reclaim passes it by. */
  locked = -1;

  constructor(
    private readonly pg: GuestPgtable,
    private readonly tlb: GuestTlb,
    private readonly stats: GuestStats,
    private readonly bus: EventBus<GuestEventMap>,
    private readonly disk: GuestDisk,
    /** The live address spaces (for rmap walks). */
    private readonly mms: () => Iterable<RmapMm>,
  ) {}

  /** The file called `name`; created with `size` bytes if there is none (a mapping past its end SIGBUSes there). */
  open(name: string, size: number): GuestFile {
    let f = this.files.get(name);
    if (f === undefined) {
      f = { ino: this.nextIno++, name, size, pages: new Map() };
      this.files.set(name, f);
    }
    return f;
  }

  file(name: string): GuestFile | undefined {
    return this.files.get(name);
  }

  isCachePage(gfn: number): boolean {
    return this.lru.has(gfn);
  }

  /** filemap_fault() for page `index` of `file`: the cache page's frame (read from the disk if absent), or -1 if no frame. */
  fault(port: CpuPort, file: GuestFile, index: number): { gfn: number; major: boolean } | null {
    const cached = file.pages.get(index);
    if (cached !== undefined) return { gfn: cached, major: false };
    // page_cache_ra_unbounded() would read ahead here; without readahead: one folio, filemap_read_folio().
    const gfn = this.pg.allocPages(port, 0, false);
    if (gfn < 0) return null;
    file.pages.set(index, gfn);
    this.lru.set(gfn, { file, index, mapcount: 0, dirty: false });
    this.stats.nr_file_pages++;
    this.disk.readPage(gfn, file.ino, index);
    this.stats.disk_reads++;
    this.stats.pgpgin += PAGE_SIZE / 1024; // submit_bio counts sectors; /proc/vmstat halves them into KiB
    this.stats.pgmajfault++;
    if (this.bus.on) this.bus.emit("guest.page_cache_read", { ino: file.ino, file: file.name, index, gfn });
    return { gfn, major: true };
  }

  /** A PTE now maps the cache page (folio_add_file_rmap_pte). */
  mapped(gfn: number): void {
    const p = this.lru.get(gfn)!;
    if (p.mapcount++ === 0) this.stats.nr_mapped++;
  }

  unmapped(gfn: number): void {
    const p = this.lru.get(gfn)!;
    if (--p.mapcount === 0) this.stats.nr_mapped--;
  }

  /** folio_mark_dirty() from a write through a shared mapping. */
  markDirty(gfn: number): void {
    const p = this.lru.get(gfn)!;
    if (!p.dirty) {
      p.dirty = true;
      this.stats.nr_dirty++;
    }
  }

  /**
   * Direct reclaim (shrink_folio_list over the file LRU): drops clean cache pages, oldest
   * first, unmapped ones before mapped ones, until `pages` frames are free or
   * SWAP_CLUSTER_MAX are taken. A mapped page is unmapped from every process first
   * (try_to_unmap: ptep_clear_flush on each PTE). Dirty pages stay (no writeback).
   */
  reclaim(port: CpuPort, pages: number): number {
    const want = Math.max(pages, SWAP_CLUSTER_MAX);
    const victims: number[] = [];
    for (let pass = 0; pass < 2 && victims.length < want; pass++) {
      for (const [gfn, p] of this.lru) {
        if (victims.length >= want) break;
        if (p.dirty || gfn === this.locked || (pass === 0) !== (p.mapcount === 0)) continue;
        victims.push(gfn);
      }
    }
    const cpu = this.cpuOf(port);
    for (const gfn of victims) {
      const p = this.lru.get(gfn)!;
      if (p.mapcount > 0) this.tryToUnmap(port, cpu, gfn, p);
      // __remove_mapping() + free: the page leaves the cache.
      this.lru.delete(gfn);
      p.file.pages.delete(p.index);
      this.stats.nr_file_pages--;
      this.stats.pgsteal_direct++;
      this.pg.freePages(gfn, 0);
      if (this.bus.on) this.bus.emit("guest.page_cache_drop", { ino: p.file.ino, file: p.file.name, index: p.index, gfn });
    }
    return victims.length;
  }

  // ---- guest reclaim with swap (vmscan.ts): the file list's share of shrink_lruvec()

  /** Pages in the cache (the file LRU's size). */
  get nrPages(): number {
    return this.lru.size;
  }

  /** Pages the last shrinkFile() took off the list. */
  lastScanned = 0;

  /**
   * shrink_inactive_list() over the file list: the `nrToScan` oldest pages; clean ones are
   * dropped (unmapped first), dirty or locked ones rotate to the head, and so do mapped ones
   * with a young PTE (folio_check_references: kept once, "activated" the second time; without
   * an active file list both go back to the head). The count dropped.
   */
  shrinkFile(port: CpuPort, nrToScan: number): number {
    const taken: number[] = [];
    for (const gfn of this.lru.keys()) {
      if (taken.length >= nrToScan) break;
      taken.push(gfn);
    }
    this.lastScanned = taken.length;
    const cpu = this.cpuOf(port);
    let dropped = 0;
    for (const gfn of taken) {
      const p = this.lru.get(gfn)!;
      if (p.dirty || gfn === this.locked || (p.mapcount > 0 && this.referenced(port, gfn, p))) {
        this.lru.delete(gfn);
        this.lru.set(gfn, p);
        continue;
      }
      if (p.mapcount > 0) this.tryToUnmap(port, cpu, gfn, p);
      this.lru.delete(gfn);
      p.file.pages.delete(p.index);
      this.stats.nr_file_pages--;
      this.pg.freePages(gfn, 0);
      dropped++;
      if (this.bus.on) this.bus.emit("guest.page_cache_drop", { ino: p.file.ino, file: p.file.name, index: p.index, gfn });
    }
    return dropped;
  }

  /** folio_referenced() over the page's mappings (A bits cleared, no flush, as on x86); true if kept. */
  // simplified: no PG_referenced on file pages: a young page is kept, an old one dropped.
  private referenced(port: CpuPort, gfn: number, p: CachePage): boolean {
    let young = 0;
    this.forEachPte(port, gfn, p, (mm, gpa, addr, lo, hi) => {
      if ((lo & PTE_A) === 0) return;
      this.pg.setEntry(port, mm, gpa, 1, addr, lo, hi, (lo & ~PTE_A) >>> 0, hi);
      young++;
    });
    return young > 0;
  }

  /** rmap_walk_file(): each present PTE of a process mapping page `gfn` of the page's file. */
  private forEachPte(
    port: CpuPort,
    gfn: number,
    p: CachePage,
    fn: (mm: RmapMm, gpa: number, addr: number, lo: number, hi: number) => void,
  ): void {
    const pg = this.pg;
    for (const mm of this.mms()) {
      for (const v of mm.vmas) {
        if (v.file !== p.file || v.pageLevel !== 1) continue;
        const first = v.pgoff ?? 0;
        if (p.index < first || p.index >= first + (v.end - v.start) / PAGE_SIZE) continue;
        const addr = v.start + (p.index - first) * PAGE_SIZE;
        const gpa = pg.walk(port, mm, addr);
        if (gpa < 0 || (pg.lo & PTE_P) === 0 || leafPfn(pg.lo, pg.hi, 1) !== gfn) continue;
        fn(mm, gpa, addr, pg.lo, pg.hi);
      }
    }
  }

  /** try_to_unmap(): rmap_walk_file over the mappings of the page's file, clearing each PTE that maps it. */
  private tryToUnmap(port: CpuPort, cpu: number, gfn: number, p: CachePage): void {
    const pg = this.pg;
    for (const mm of this.mms()) {
      for (const v of mm.vmas) {
        if (v.file !== p.file || v.pageLevel !== 1) continue;
        const first = v.pgoff ?? 0;
        if (p.index < first || p.index >= first + (v.end - v.start) / PAGE_SIZE) continue;
        const addr = v.start + (p.index - first) * PAGE_SIZE;
        const gpa = pg.walk(port, mm, addr);
        if (gpa < 0) continue;
        const lo = pg.lo;
        const hi = pg.hi;
        if ((lo & PTE_P) === 0 || leafPfn(lo, hi, 1) !== gfn) continue; // not mapped here, or a private copy
        // try_to_unmap_one(): ptep_clear_flush(), then the rmap and MM_FILEPAGES drop.
        pg.setEntry(port, mm, gpa, 1, addr, lo, hi, 0, 0);
        this.tlb.flushTlbPage(cpu, mm, addr);
        mm.RssFile--;
        this.unmapped(gfn);
      }
    }
  }

  private cpuOf(port: CpuPort): number {
    const i = this.tlb.cpus.findIndex((c) => c.port === port);
    return Math.max(i, 0);
  }

  snapshot(): PageCacheSnapshot {
    return {
      nextIno: this.nextIno,
      files: [...this.files.values()].map((f) => ({ ino: f.ino, name: f.name, size: f.size })),
      pages: [...this.lru].map(([gfn, p]) => [gfn, p.file.ino, p.index, p.mapcount, p.dirty]),
    };
  }

  /** Puts the cache back as it was; file objects of names still known are reused (VMAs point at them). */
  restore(s: PageCacheSnapshot): void {
    this.nextIno = s.nextIno;
    const byIno = new Map<number, GuestFile>();
    const old = this.files;
    const next = new Map<string, GuestFile>();
    for (const fs of s.files) {
      let f = old.get(fs.name);
      if (f === undefined || f.ino !== fs.ino) f = { ino: fs.ino, name: fs.name, size: fs.size, pages: new Map() };
      f.size = fs.size;
      f.pages.clear();
      next.set(f.name, f);
      byIno.set(f.ino, f);
    }
    old.clear();
    for (const [k, f] of next) old.set(k, f);
    this.lru.clear();
    for (const [gfn, ino, index, mapcount, dirty] of s.pages) {
      const file = byIno.get(ino)!;
      file.pages.set(index, gfn);
      this.lru.set(gfn, { file, index, mapcount, dirty });
    }
    this.locked = -1;
  }
}
