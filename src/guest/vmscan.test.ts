// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import { NativeCpu } from "../hw/native_cpu.js";
import { PhysMem } from "../hw/phys_mem.js";
import { PTE_P } from "../hw/x86_pte.js";
import type { GuestEventMap } from "./guest_events.js";
import { GuestKernel } from "./kernel.js";
import type { GuestProcess } from "./process.js";
import { isSwapPte, swpEntryHi, swpEntryLo, swpOffset } from "./swapfile.js";

const MiB = 1024 * 1024;

/** A guest on bare metal with a swap disk that keeps each slot's content tag. */
function machine(ram: number, swap: number, watermarks = { min: 64, low: 128, high: 192 }) {
  const mem = new PhysMem(ram);
  const port = new NativeCpu(mem, { levels: 4 });
  const image = new Map<number, number>();
  const bus = new EventBus<GuestEventMap>();
  const outs: GuestEventMap["guest.swap_out"][] = [];
  bus.listen((e) => {
    if (e.kind === "guest.swap_out") outs.push(e as unknown as GuestEventMap["guest.swap_out"]);
  });
  const disk = {
    writeSlot: (gfn: number, slot: number) => {
      image.set(slot, mem.content[gfn]!);
      return 0;
    },
    readSlot: (gfn: number, slot: number) => void (mem.content[gfn] = image.get(slot)!),
  };
  const k = new GuestKernel({ ram: [[0, ram]], cpus: [port], levels: 4, bus, swap: { bytes: swap, disk, watermarks } });
  /** One access, faulting as needed; a write stores `value`, a read returns what the page holds. */
  const access = (proc: GuestProcess, gva: number, write: boolean, value = 0): number => {
    k.contextSwitch(proc);
    for (let i = 0; i < 4; i++) {
      const r = port.mmu.access(gva, ACC_USER | (write ? ACC_WRITE : 0));
      if (r === XLATE_OK) {
        const frame = Math.floor(port.mmu.hpa / PAGE_SIZE);
        if (write) mem.content[frame] = value;
        return mem.content[frame]!;
      }
      expect(r).toBe(XLATE_GUEST_PF);
      expect(k.handlePageFault(proc, gva, port.mmu.errorCode)).toBe("fixed");
    }
    throw new Error("fault loop");
  };
  return { mem, port, k, access, outs, image };
}

describe("guest swap PTEs", () => {
  test("x86-64 swap entries: offset inverted in bits 9..58, type 0, not present; they decode back", () => {
    expect([swpEntryLo(0), swpEntryHi(0)]).toEqual([0xfffffe00, 0x07ffffff]);
    expect([swpEntryLo(1), swpEntryHi(1)]).toEqual([0xfffffc00, 0x07ffffff]);
    for (const off of [1, 5, 0x7fffff, 0x800000, 123456789]) {
      expect(swpOffset(swpEntryLo(off), swpEntryHi(off))).toBe(off);
      expect(isSwapPte(swpEntryLo(off), swpEntryHi(off))).toBe(true);
    }
  });
});

describe("guest reclaim and swap (no host)", () => {
  test("writing 2x the guest's RAM: reclaim swaps the oldest pages, each after a second look, and every value reads back", () => {
    const { k, access, outs } = machine(16 * MiB, 64 * MiB);
    const p = k.createProcess("a");
    const pages = 6000;
    const gva = k.mmap(p, "heap", pages * PAGE_SIZE);
    const value = (i: number) => (i * 2654435761 + 1) >>> 0 || 1;
    for (let i = 0; i < pages; i++) access(p, gva + i * PAGE_SIZE, true, value(i));
    const sw = k.swapStats!;
    const r = k.reclaim!;
    // Every page was written once, never touched again: folio_check_references() keeps it
    // once (A set by the fault), then reclaims it. Nothing is activated.
    expect(sw.pgactivate).toBe(0);
    const referenced = [...r.inactive.values()].filter((x) => x.referenced).length;
    expect(sw.pgscan_kswapd + sw.pgscan_direct).toBe(2 * sw.pswpout + referenced);
    expect(sw.pgsteal_kswapd + k.stats.pgsteal_direct).toBe(sw.pswpout);
    // LRU order: the pages swapped out are the oldest, in the order they were faulted in.
    expect(outs.map((e) => (e.gva - gva) / PAGE_SIZE)).toEqual([...Array(sw.pswpout).keys()]);
    expect(outs.map((e) => e.slot)).toEqual([...Array(sw.pswpout).keys()].map((i) => i + 1));
    expect(sw.pswpout + p.RssAnon).toBe(pages);
    expect(k.stats.nr_anon_pages).toBe(p.RssAnon);
    expect(sw.nr_inactive_anon + sw.nr_active_anon).toBe(p.RssAnon);
    // Each swapped page's PTE is a swap entry naming its slot.
    for (const e of outs) {
      const gpa = k.pgtable.walk(k.tlb.cpus[0]!.port, p, e.gva);
      expect(gpa).toBeGreaterThanOrEqual(0);
      expect((k.pgtable.lo & PTE_P) === 0 && swpOffset(k.pgtable.lo, k.pgtable.hi)).toBe(e.slot);
    }
    expect(k.stats.nr_free_pages).toBeGreaterThanOrEqual(r.wmark.min);
    // Read back: every value, swapped or not, is what was written.
    for (let i = 0; i < pages; i++) expect(access(p, gva + i * PAGE_SIZE, false)).toBe(value(i));
    expect(sw.pswpin).toBeGreaterThanOrEqual(sw.pswpout - (pages - p.RssAnon));
    expect(sw.workingset_refault_anon).toBe(sw.pswpin);
    expect(sw.nr_swap_pages).toBe(16383 - (sw.pswpout - sw.pswpin));
    // exit frees every slot still in use.
    k.exit(p);
    expect(sw.nr_swap_pages).toBe(16383);
    expect([sw.nr_inactive_anon, sw.nr_active_anon, k.stats.nr_anon_pages]).toEqual([0, 0, 0]);
  });

  test("one direct reclaim of SWAP_CLUSTER_MAX over 1000 young pages: 1058 scanned, the 58 oldest swapped out", () => {
    // Watermarks 0: nothing reclaims while the pages are faulted in.
    const { k, access, outs, port } = machine(64 * MiB, 64 * MiB, { min: 0, low: 0, high: 0 });
    const p = k.createProcess("a");
    const gva = k.mmap(p, "heap", 1000 * PAGE_SIZE);
    for (let i = 0; i < 1000; i++) access(p, gva + i * PAGE_SIZE, true, i + 1);
    expect(k.swapStats!.nr_inactive_anon).toBe(1000);
    const writes = k.stats.pteWrites;
    const flushes = k.stats.nr_tlb_local_flush_one;
    // shrink_node() from DEF_PRIORITY: 1000 >> p pages per priority, 0 until p = 9; priorities
    // 9..1 scan 1+3+7+15+31+62+125+250+500 = 994 pages, each young (A set by its fault): kept,
    // PG_referenced set, A cleared. Priority 0 scans in batches of 32: the 6 never scanned are
    // kept, 26 old ones are reclaimed, then a whole batch of 32: 58 >= 32, done.
    expect(k.reclaim!.shrinkNode(port, 0, 32, false)).toBe(58);
    const sw = k.swapStats!;
    expect([sw.pgscan_direct, k.stats.pgsteal_direct, sw.pswpout, sw.pgscan_kswapd, sw.pgactivate]).toEqual([1058, 58, 58, 0, 0]);
    expect(outs.map((e) => (e.gva - gva) / PAGE_SIZE)).toEqual([...Array(58).keys()]);
    // 1000 A-bit clears, then per swapped page ptep_clear_flush() (a write and one INVLPG) and the swap PTE.
    expect(k.stats.pteWrites - writes).toBe(1000 + 2 * 58);
    expect(k.stats.nr_tlb_local_flush_one - flushes).toBe(58);
    expect([p.RssAnon, sw.nr_inactive_anon, sw.nr_swap_pages]).toEqual([942, 942, 16383 - 58]);
    // The swapped pages read back what was written; each read is a swap-in (pgmajfault, maj_flt).
    for (let i = 0; i < 58; i++) expect(access(p, gva + i * PAGE_SIZE, false)).toBe(i + 1);
    expect([sw.pswpin, sw.workingset_refault_anon, k.stats.pgmajfault, p.maj_flt, sw.nr_swap_pages]).toEqual([58, 58, 58, 58, 16383]);
  });

  test("an allocation that would go below min wakes kswapd and reclaims directly (the same 58 of 1058), then kswapd finds the high watermark met", () => {
    const wm = { min: 0, low: 0, high: 0 };
    const { k, access } = machine(64 * MiB, 64 * MiB, wm);
    const p = k.createProcess("a");
    const gva = k.mmap(p, "heap", 1001 * PAGE_SIZE);
    for (let i = 0; i < 1000; i++) access(p, gva + i * PAGE_SIZE, true, i + 1);
    const free = k.alloc.nrFree;
    const tables = k.stats.nr_page_table_pages;
    Object.assign(wm, { min: free, low: free, high: free });
    access(p, gva + 1000 * PAGE_SIZE, true, 1001);
    const sw = k.swapStats!;
    // __alloc_pages(): free - 1 < low wakes kswapd, free - 1 < min: try_to_free_pages() as in
    // the test above; the pages freed put free above min (and above high, so kswapd sleeps at once).
    expect([sw.kswapd_wakeups, sw.pgscan_direct, k.stats.pgsteal_direct, sw.pgscan_kswapd, sw.pgsteal_kswapd]).toEqual([1, 1058, 58, 0, 0]);
    expect(k.reclaim!.kswapdAwake).toBe(false);
    // 58 freed, one data page taken (and a page table if the page needed one).
    expect(k.alloc.nrFree).toBe(free + 58 - 1 - (k.stats.nr_page_table_pages - tables));
  });

  test("clean page-cache pages go through the same shrink_node: mapped young ones kept once, then dropped (161 scanned, 61 dropped)", () => {
    const { k, access, port } = machine(64 * MiB, 64 * MiB, { min: 0, low: 0, high: 0 });
    const p = k.createProcess("a");
    const gva = k.mmap(p, "lib", 100 * PAGE_SIZE, { file: "lib.so", write: false });
    for (let i = 0; i < 100; i++) access(p, gva + i * PAGE_SIZE, false);
    expect([k.stats.nr_file_pages, k.stats.nr_mapped, p.RssFile]).toEqual([100, 100, 100]);
    const writes = k.stats.pteWrites;
    // 100 >> p: 0 until p = 6, then 1+3+6+12+25+50 = 97 young pages kept (A cleared); at p = 0
    // a batch of 32 keeps the 3 never scanned and drops 29, the next drops 32: 61 >= 32.
    expect(k.reclaim!.shrinkNode(port, 0, 32, false)).toBe(61);
    expect([k.swapStats!.pgscan_direct, k.stats.pgsteal_direct, k.swapStats!.pswpout]).toEqual([161, 61, 0]);
    expect([k.stats.nr_file_pages, k.stats.nr_mapped, p.RssFile]).toEqual([39, 39, 39]);
    expect(k.stats.pteWrites - writes).toBe(100 + 61); // A-bit clears, then one ptep_clear_flush() per dropped page
    // The dropped pages read back from the disk.
    const reads = k.stats.disk_reads;
    for (let i = 0; i < 100; i++) access(p, gva + i * PAGE_SIZE, false);
    expect(k.stats.disk_reads - reads).toBe(61);
  });
});
