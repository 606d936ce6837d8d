// SPDX-License-Identifier: MIT
// One swap device (mm/swapfile.c): the swap_map of per-slot counts, slot allocation, and
// the device's contents. Slot 0 holds the swap header and is never used, as in Linux.
//
// swap_map[slot] = number of swap PTEs that reference the slot | SWAP_HAS_CACHE when a
// folio for it is in the swap cache. A slot is free when its byte is 0.
//
// Contents: the content tag written by swap_writepage(), and for a page that held a page
// table (PhysMem.isTable), the table's 1024 words.
// simplified: next-fit slot allocation (si->cluster_next), no per-CPU clusters, one device.

/** SWAP_HAS_CACHE: a folio for this slot is in the swap cache. */
export const SWAP_HAS_CACHE = 0x40;
/** SWAP_MAP_BAD: the slot is unusable (the header). */
export const SWAP_MAP_BAD = 0x3f;
const COUNT_MASK = 0x3f;

export class SwapDevice {
  /** Pages of the device, header included (si->max). */
  readonly max: number;
  /** Usable slots (total_swap_pages). */
  readonly totalSwapPages: number;
  /** Free slots (nr_swap_pages). */
  nrSwapPages: number;
  readonly swapMap: Uint8Array;
  /** Swap cache (swapper_spaces xarray): pfn of the folio caching each slot, 0 if none. */
  readonly cache: Int32Array;
  /** Workingset shadow left in the swap cache at eviction: 1 + 2*eviction_age + workingset bit; 0 if none. */
  readonly shadow: Float64Array;
  /** Content tag of each slot's page as written by swap_writepage(). */
  readonly data: Uint32Array;
  /** Table words of slots whose page held a page table. */
  readonly tables = new Map<number, Uint32Array>();
  /** si->zeromap (Linux 6.12): the slot's page was zero-filled and never written. Used with host.zswap only. */
  readonly zeromap: Uint8Array;
  /** zswap_invalidate() on swap_range_free(), when zswap is configured. */
  frontswap: { invalidate(slot: number): void } | null = null;
  /** Next slot to try (si->cluster_next). */
  private clusterNext = 1;

  constructor(bytes: number) {
    this.max = Math.floor(bytes / 4096);
    if (this.max < 2) throw new RangeError(`a swap device needs at least two pages (header + one slot), not ${bytes} bytes`);
    this.totalSwapPages = this.max - 1;
    this.nrSwapPages = this.totalSwapPages;
    this.swapMap = new Uint8Array(this.max);
    this.swapMap[0] = SWAP_MAP_BAD;
    this.cache = new Int32Array(this.max);
    this.shadow = new Float64Array(this.max);
    this.data = new Uint32Array(this.max);
    this.zeromap = new Uint8Array(this.max);
  }

  /** get_swap_pages() for one slot: a free slot now marked SWAP_HAS_CACHE, or 0 if the device is full. */
  allocSlot(): number {
    if (this.nrSwapPages === 0) return 0;
    const map = this.swapMap;
    let s = this.clusterNext;
    for (let n = 0; n < this.max; n++, s++) {
      if (s >= this.max) s = 1;
      if (map[s] === 0) {
        map[s] = SWAP_HAS_CACHE;
        this.nrSwapPages--;
        this.clusterNext = s + 1;
        this.shadow[s] = 0;
        return s;
      }
    }
    return 0;
  }

  /** Number of swap PTEs referencing `slot` (swap_count()). */
  count(slot: number): number {
    return this.swapMap[slot]! & COUNT_MASK;
  }

  hasCache(slot: number): boolean {
    return (this.swapMap[slot]! & SWAP_HAS_CACHE) !== 0;
  }

  /** swap_duplicate(): one more swap PTE references the slot. */
  duplicate(slot: number): void {
    if (this.swapMap[slot] === 0 || this.count(slot) >= SWAP_MAP_BAD - 1) throw new Error(`swap_duplicate on bad slot ${slot}`);
    this.swapMap[slot]!++;
  }

  /** swap_free(): a swap PTE stops referencing the slot; frees it if nothing else does. */
  free(slot: number): void {
    if (this.count(slot) === 0) throw new Error(`swap_free on slot ${slot} with no references`);
    this.swapMap[slot]!--;
    if (this.swapMap[slot] === 0) this.release(slot);
  }

  /** Marks that a folio for `slot` entered the swap cache (swapcache_prepare()). */
  setCache(slot: number, pfn: number): void {
    this.swapMap[slot] = this.swapMap[slot]! | SWAP_HAS_CACHE;
    this.cache[slot] = pfn;
  }

  /** put_swap_folio(): the swap cache no longer holds the slot; frees it if no PTE references it. */
  dropCache(slot: number): void {
    this.cache[slot] = 0;
    this.swapMap[slot] = this.swapMap[slot]! & ~SWAP_HAS_CACHE;
    if (this.swapMap[slot] === 0) this.release(slot);
  }

  /** vm_swap_full(): less than half of the swap space is free. */
  get full50(): boolean {
    return this.nrSwapPages * 2 < this.totalSwapPages;
  }

  /** swap_range_free(): the slot is free again; its data and shadow go. */
  private release(slot: number): void {
    this.nrSwapPages++;
    this.shadow[slot] = 0;
    this.tables.delete(slot);
    this.zeromap[slot] = 0;
    this.frontswap?.invalidate(slot);
  }
}
