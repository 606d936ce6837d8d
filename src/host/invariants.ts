// SPDX-License-Identifier: MIT
// A checker for the host mm's invariants (what CONFIG_DEBUG_VM would catch): every
// mapped anon page has a matching rmap and sits on exactly one LRU list; per-mm counts
// match the page tables; every swap slot is referenced exactly as often as counted;
// the allocator's free count matches its lists.

import { LEVEL_SIZE } from "../hw/addr.js";
import { PagedArray } from "../hw/paged_array.js";
import { PTE_P, PTE_PS, entryPfn } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import { LRU_NAMES } from "./lru.js";
import type { Mm } from "./mm_types.js";
import { PG_anon, PG_ksm, PG_lru, PG_swapcache } from "./page_flags.js";
import { leafPfn, swpOffset } from "./pgtable.js";

function fail(msg: string): never {
  throw new Error(`host mm invariant: ${msg}`);
}

/** Marks per frame in checkInvariants()'s scratch array. */
const MAPPED = 1;
const ON_LRU = 2;
/** A KSM page already counted once in nr_anon_pages. */
const KSM_SEEN = 4;

interface MmTally {
  rss: number;
  /** Mappings of KSM pages beyond the first (NR_ANON_MAPPED counts a folio once). */
  ksmSharing?: number;
  zero: number;
  swapents: number;
  hugetlb: number;
  tables: number;
}

export function checkInvariants(k: HostKernel): void {
  const m = k.meta;
  // Swap PTEs per slot (committed only where slots are used), and MAPPED/ON_LRU per frame.
  const swapRefs = new PagedArray(Math.max(k.swap?.max ?? 1, 1));
  const marks = new Uint8Array(m.flags.length);
  let anonMapped = 0;
  let tablePages = 0;
  let swapPtes = 0;
  for (const mm of k.processes()) {
    const t: MmTally = { rss: 0, zero: 0, swapents: 0, hugetlb: 0, tables: 1 };
    walkTable(k, mm, mm.pgd, 4, 0, t, swapRefs, marks);
    t.tables += mm.deposited.size;
    if (t.rss !== mm.rss) fail(`mm ${mm.id} rss ${mm.rss} but its tables map ${t.rss} anon pages`);
    if (t.zero !== mm.rssZeroPage) fail(`mm ${mm.id} rssZeroPage ${mm.rssZeroPage} but ${t.zero} zero-page PTEs`);
    if (t.swapents !== mm.swapents) fail(`mm ${mm.id} swapents ${mm.swapents} but ${t.swapents} swap PTEs`);
    if (t.hugetlb !== mm.hugetlbPages) fail(`mm ${mm.id} hugetlbPages ${mm.hugetlbPages} but ${t.hugetlb}`);
    if (t.tables * 4096 !== mm.pgtablesBytes) fail(`mm ${mm.id} pgtables_bytes ${mm.pgtablesBytes} but ${t.tables} table pages`);
    anonMapped += t.rss - (t.ksmSharing ?? 0);
    tablePages += t.tables;
    swapPtes += t.swapents;
  }
  if (anonMapped !== k.nrAnonMapped) fail(`nr_anon_pages ${k.nrAnonMapped} but ${anonMapped} mapped`);
  if (tablePages !== k.nrPageTablePages) fail(`nr_page_table_pages ${k.nrPageTablePages} but ${tablePages} reachable`);
  // LRU lists.
  for (let lru = 0; lru < 4; lru++) {
    const head = m.lruBase + lru;
    let pages = 0;
    for (let p = m.next[head]!; p !== head; p = m.next[p]!) {
      if (m.prev[m.next[p]!] !== p) fail(`broken LRU links at frame ${p}`);
      if ((m.flags[p]! & PG_lru) === 0) fail(`frame ${p} on ${LRU_NAMES[lru]} without PG_lru`);
      if (k.lru.folioLru(p) !== lru) fail(`frame ${p} on ${LRU_NAMES[lru]} but its flags say ${LRU_NAMES[k.lru.folioLru(p)]}`);
      if ((marks[p]! & ON_LRU) !== 0) fail(`frame ${p} twice on the LRU`);
      marks[p] = marks[p]! | ON_LRU;
      pages += m.nrPages(p);
    }
    if (pages !== k.lru.nrPages[lru]) fail(`${LRU_NAMES[lru]} holds ${pages} pages but counts ${k.lru.nrPages[lru]}`);
  }
  for (let p = 0; p < marks.length; p++) if (marks[p] === MAPPED) fail(`mapped anon frame ${p} is on no LRU list`);
  // Swap.
  const swap = k.swap;
  if (swap) {
    let free = 0;
    let cached = 0;
    for (let s = 1; s < swap.max; s++) {
      const refs = swapRefs.get(s);
      if (swap.count(s) !== refs) fail(`swap slot ${s} counts ${swap.count(s)} references but ${refs} swap PTEs point at it`);
      if (swap.swapMap[s] === 0) free++;
      const pfn = swap.cache[s]!;
      if (swap.hasCache(s) !== (pfn !== 0)) fail(`swap slot ${s}: SWAP_HAS_CACHE and the swap cache disagree`);
      if (pfn !== 0) {
        cached++;
        if ((m.flags[pfn]! & PG_swapcache) === 0 || m.swap[pfn] !== s) fail(`swap cache slot ${s} -> frame ${pfn} not marked`);
      }
    }
    if (free !== swap.nrSwapPages) fail(`nr_swap_pages ${swap.nrSwapPages} but ${free} free slots`);
    if (cached !== k.nrSwapcached) fail(`nr_swapcached ${k.nrSwapcached} but ${cached} cached slots`);
  } else if (swapPtes > 0) fail("swap PTEs without a swap device");
  // Buddy.
  let free = (k.buddy.pristineEnd - k.buddy.pristine) | 0;
  for (let o = 0; o < k.buddy.nrFreeArea.length; o++) {
    let n = 0;
    const head = m.buddyBase + o;
    for (let p = m.next[head]!; p !== head; p = m.next[p]!) n++;
    if (n !== k.buddy.nrFreeArea[o]) fail(`free_area[${o}] holds ${n} blocks but counts ${k.buddy.nrFreeArea[o]}`);
    free += n * 2 ** o;
  }
  if (free !== k.buddy.nrFree) fail(`nr_free_pages ${k.buddy.nrFree} but the free lists hold ${free}`);
}

function walkTable(
  k: HostKernel,
  mm: Mm,
  table: number,
  level: number,
  base: number,
  t: MmTally,
  swapRefs: PagedArray,
  marks: Uint8Array,
): void {
  const m = k.meta;
  const size = LEVEL_SIZE[level]!;
  for (let i = 0; i < 512; i++) {
    const lo = k.mem.readLo(table, i);
    const hi = k.mem.readHi(table, i);
    if (lo === 0 && hi === 0) continue;
    const addr = base + i * size;
    if ((lo & PTE_P) === 0) {
      if (level !== 1) fail(`mm ${mm.id}: non-present non-zero entry at level ${level}`);
      const slot = swpOffset(lo, hi);
      if (slot >= swapRefs.limit) fail(`mm ${mm.id}: swap PTE for slot ${slot}, beyond the swap device (${k.swap?.max ?? 0} slots)`);
      swapRefs.set(slot, swapRefs.get(slot) + 1);
      t.swapents++;
      continue;
    }
    if (level > 1 && (lo & PTE_PS) === 0) {
      t.tables++;
      walkTable(k, mm, entryPfn(lo, hi), level - 1, addr, t, swapRefs, marks);
      continue;
    }
    const pfn = leafPfn(lo, hi, level);
    const pages = size / 4096;
    if (pfn === k.zeroPfn || pfn === k.hugeZeroPfn) {
      t.zero += pages;
      continue;
    }
    if (k.hugetlb.isHugetlb(pfn)) {
      t.hugetlb += pages;
      continue;
    }
    if (!mm.findVma(addr)) fail(`mm ${mm.id} maps frame ${pfn} at 0x${addr.toString(16)} outside any VMA`);
    if ((m.flags[pfn]! & PG_anon) === 0) fail(`mapped frame ${pfn} is not anon`);
    if ((m.flags[pfn]! & PG_ksm) !== 0) {
      // A KSM page: mapped by its stable node's sharers, off the LRU (ksm.ts).
      t.rss += pages;
      if ((marks[pfn]! & KSM_SEEN) !== 0) t.ksmSharing = (t.ksmSharing ?? 0) + pages;
      marks[pfn] = KSM_SEEN;
      continue;
    }
    if (m.mapcount[pfn] !== 1) fail(`frame ${pfn} mapcount ${m.mapcount[pfn]}`);
    if (m.mapMm[pfn] !== mm.id || m.mapAddr[pfn] !== addr)
      fail(`frame ${pfn} rmap says mm ${m.mapMm[pfn]} 0x${m.mapAddr[pfn]!.toString(16)}, tables say mm ${mm.id} 0x${addr.toString(16)}`);
    if (m.nrPages(pfn) !== pages) fail(`frame ${pfn} is a ${m.nrPages(pfn)}-page folio mapped at level ${level}`);
    t.rss += pages;
    marks[pfn] = MAPPED;
  }
}
