// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EventBus } from "../hw/events.js";
import { HostKernel, type MmuNotifier, type MmuNotifierRange } from "./index.js";
import type { KsmConfig } from "./ksm.js";
import type { Mm } from "./mm_types.js";
import { PG_ksm } from "./page_flags.js";

const MiB = 1024 * 1024;
const P = 4096;
const N = 8;

function boot(ksm: Partial<KsmConfig> = {}) {
  return new HostKernel({ ram: 64 * MiB, swap: 0, thp: "never", debugChecks: true, ksm: { run: 1, ...ksm } }, new EventBus());
}

/** Counts invalidate_range_start calls per page. */
class Recorder implements MmuNotifier {
  starts = 0;
  readonly log: string[] = [];
  invalidateRangeStart(r: MmuNotifierRange): void {
    this.starts++;
    this.log.push(`${r.event} ${r.start.toString(16)}`);
  }
  invalidateRangeEnd(): void {}
  clearFlushYoung(): boolean {
    return false;
  }
  clearYoung(): boolean {
    return false;
  }
  testYoung(): boolean {
    return false;
  }
  release(): void {}
}

/** A "QEMU" with `pages` of mergeable RAM, page i written with values[i]. */
function vm(k: HostKernel, name: string, values: number[]): { mm: Mm; base: number } {
  const mm = k.createProcess(name);
  const base = k.mmap(mm, values.length * P);
  k.madvise(mm, base, values.length * P, "mergeable");
  for (const [i, v] of values.entries()) expect(k.userAccess(mm, base + i * P, true, v)).toBe(v);
  return { mm, base };
}

const distinct = Array.from({ length: N }, (_, i) => 0x1000 + i);

describe("KSM (mm/ksm.c)", () => {
  it("two mms with the same N distinct pages: pages_shared = N, pages_sharing = N after two full scans; N pages freed", () => {
    const k = boot();
    vm(k, "a", distinct);
    vm(k, "b", distinct);
    const free0 = k.nrFreePages;
    const anon0 = k.vmstat().nr_anon_pages!;
    k.ksm.runFullScans(1);
    // First scan: every checksum is new (rmap_item->oldchecksum starts at 0), nothing merges.
    expect(k.ksm.counters()).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 2 * N, full_scans: 1 });
    k.ksm.runFullScans(1);
    expect(k.ksm.counters()).toMatchObject({
      pages_shared: N,
      pages_sharing: N,
      pages_unshared: 0,
      pages_volatile: 0,
      full_scans: 2,
      pages_scanned: 4 * N,
      ksm_merges: N,
    });
    expect(k.nrFreePages - free0).toBe(N);
    expect(anon0 - k.vmstat().nr_anon_pages!).toBe(N);
    // A third scan finds everything in place: nothing changes.
    k.ksm.runFullScans(1);
    expect(k.ksm.counters()).toMatchObject({ pages_shared: N, pages_sharing: N, ksm_merges: N });
  });

  it("merging write-protects through the notifier; a write breaks COW once with one invalidation; values survive", () => {
    const k = boot();
    const a = vm(k, "a", distinct);
    const b = vm(k, "b", distinct);
    const rec = new Recorder();
    a.mm.registerNotifier(rec);
    k.ksm.runFullScans(2);
    // a's pages were scanned first: they are the unstable-tree pages that b's pages find, so
    // each is write-protected (write_protect_page) then replaced (replace_page): 2 invalidations.
    expect(rec.starts).toBe(2 * N);
    const p = k.probe(a.mm, a.base);
    expect(p.writable).toBe(false);
    expect(k.meta.flags[p.pfn]! & PG_ksm).toBe(PG_ksm);
    rec.starts = 0;
    const freeBefore = k.nrFreePages;
    expect(k.userAccess(a.mm, a.base, true, 0xbeef)).toBe(0xbeef);
    expect(rec.starts).toBe(1);
    expect(rec.log.at(-1)).toBe(`clear ${a.base.toString(16)}`);
    expect(k.ksm.counters().ksm_cow_breaks).toBe(1);
    expect(k.nrFreePages).toBe(freeBefore - 1); // the copy; the KSM page stays for b
    expect(k.userAccess(b.mm, b.base, false)).toBe(distinct[0]);
    for (let i = 1; i < N; i++) {
      expect(k.userAccess(a.mm, a.base + i * P, false)).toBe(distinct[i]);
      expect(k.userAccess(b.mm, b.base + i * P, false)).toBe(distinct[i]);
    }
    // ksmd notices on its next visit: a's rmap_item leaves the stable node (pages_sharing--).
    k.ksm.runFullScans(1);
    expect(k.ksm.counters()).toMatchObject({ pages_shared: N, pages_sharing: N - 1 });
  });

  it("the last sharer's write frees the KSM page; the stale stable node is dropped on the next lookup", () => {
    const k = boot();
    const a = vm(k, "a", [7]);
    const b = vm(k, "b", [7]);
    k.ksm.runFullScans(2);
    const kpfn = k.probe(a.mm, a.base).pfn;
    const free0 = k.nrFreePages;
    k.userAccess(a.mm, a.base, true, 8);
    k.userAccess(b.mm, b.base, true, 9);
    expect(k.nrFreePages).toBe(free0 - 1); // two copies, one KSM page freed
    expect(k.meta.flags[kpfn]! & PG_ksm).toBe(0);
    k.ksm.runFullScans(1);
    expect(k.ksm.counters()).toMatchObject({ pages_shared: 0, pages_sharing: 0 });
  });

  it("a page rewritten between scans is volatile and never merged", () => {
    const k = boot();
    const a = vm(k, "a", [5, 6]);
    const b = vm(k, "b", [5, 6]);
    k.ksm.runFullScans(1);
    k.userAccess(a.mm, a.base + P, true, 0x77); // a's page 1 changes after its checksum was taken
    k.userAccess(b.mm, b.base + P, true, 0x77);
    k.ksm.runFullScans(1);
    expect(k.ksm.counters()).toMatchObject({ pages_shared: 1, pages_sharing: 1, pages_volatile: 2, pages_unshared: 0 });
    expect(k.probe(a.mm, a.base + P).writable).toBe(true);
  });

  it("an unpaired unchanged page waits in the unstable tree (pages_unshared)", () => {
    const k = boot();
    vm(k, "a", [1, 2, 3]);
    vm(k, "b", [1, 9, 3]);
    k.ksm.runFullScans(2);
    expect(k.ksm.counters()).toMatchObject({ pages_shared: 2, pages_sharing: 2, pages_unshared: 2, pages_volatile: 0 });
  });

  it("use_zero_pages merges zero-filled pages with the zero page (ksm_zero_pages); a write drops the count", () => {
    const k = boot({ useZeroPages: true });
    const a = vm(k, "a", [0, 0, 0, 4]);
    const free0 = k.nrFreePages;
    k.ksm.runFullScans(2);
    // The merged pages' rmap_items live until the next scan skips their (now zero-page) PTEs.
    expect(k.ksm.counters()).toMatchObject({ ksm_zero_pages: 3, pages_shared: 0, pages_sharing: 0, pages_unshared: 1, pages_volatile: 3 });
    k.ksm.runFullScans(1);
    expect(k.ksm.counters()).toMatchObject({ ksm_zero_pages: 3, pages_unshared: 1, pages_volatile: 0, ksm_rmap_items: 1 });
    expect(k.nrFreePages - free0).toBe(3);
    expect(k.probe(a.mm, a.base).zeroPage).toBe(true);
    expect(k.userAccess(a.mm, a.base + P, false)).toBe(0);
    k.userAccess(a.mm, a.base, true, 0x55);
    expect(k.ksm.counters()).toMatchObject({ ksm_zero_pages: 2, ksm_cow_breaks: 1 });
    k.munmap(a.mm, a.base, 4 * P);
    expect(k.ksm.counters().ksm_zero_pages).toBe(0);
  });

  it("without use_zero_pages, zero pages of one mm merge into one KSM page; max_page_sharing caps each dup", () => {
    const k = boot({ maxPageSharing: 4 });
    vm(k, "a", Array(10).fill(0));
    k.ksm.runFullScans(2);
    // 10 equal pages, at most 4 rmap_items per KSM page: dups of 4, 4 and 2.
    expect(k.ksm.counters()).toMatchObject({ pages_shared: 3, pages_sharing: 7, ksm_zero_pages: 0 });
  });

  it("MADV_UNMERGEABLE breaks every KSM page of the range", () => {
    const k = boot();
    const a = vm(k, "a", distinct);
    vm(k, "b", distinct);
    k.ksm.runFullScans(2);
    k.madvise(a.mm, a.base, N * P, "unmergeable");
    expect(k.ksm.counters().ksm_cow_breaks).toBe(N);
    expect(k.probe(a.mm, a.base).writable).toBe(true);
    k.ksm.runFullScans(1);
    // b still maps the N KSM pages: each stays in the stable tree with its one rmap_item.
    expect(k.ksm.counters()).toMatchObject({ pages_shared: N, pages_sharing: 0, ksm_rmap_items: N });
  });

  it("ksmd scans pages_to_scan pages per wakeup, sleep_millisecs of model time apart (3 GHz)", () => {
    const k = boot({ pagesToScan: 3, sleepMillisecs: 10 });
    vm(k, "a", distinct);
    expect(k.ksm.tick(0)).toBe(true);
    expect(k.ksm.counters().pages_scanned).toBe(3);
    expect(k.ksm.tick(29_999_999)).toBe(false);
    expect(k.ksm.tick(30_000_000)).toBe(true);
    expect(k.ksm.counters().pages_scanned).toBe(6);
  });
});
