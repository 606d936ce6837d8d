// SPDX-License-Identifier: MIT
// QEMU's dirty-page sync for migration: memory_global_dirty_log_start sets KVM_MEM_LOG_DIRTY_PAGES
// on every RAM memslot (kvm_log_start), migration_bitmap_sync harvests KVM's log and ORs in what
// QEMU itself wrote into guest RAM (cpu_physical_memory_set_dirty_range: here, its disk reads).
// The harvest follows how the VM's KVM logs (accel/kvm/kvm-all.c):
// - bitmap: kvm_physical_sync_dirty_bitmap, KVM_GET_DIRTY_LOG per slot, which also re-protects;
// - manual protect (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): the get leaves pages writable; the sync
//   marks chunks of 2^clear_bitmap_shift pages in the clear_bmap, and the first page sent from a
//   chunk clears it first (migration_clear_memory_region_dirty_bitmap -> kvm_log_clear ->
//   KVM_CLEAR_DIRTY_LOG of that chunk's bits), so a write between sync and send is not resent;
// - dirty ring: kvm_dirty_ring_flush (reap every vCPU's ring, KVM_RESET_DIRTY_RINGS) at each
//   sync, and on a KVM_EXIT_DIRTY_RING_FULL exit.
// simplified: no dirty-ring reaper thread (QEMU's reaps once a second besides); rings are reaped at syncs and when full.

import { PAGE_SIZE } from "../hw/addr.js";
import {
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  dirtyBitmapWords,
  kvmClearDirtyLog,
  kvmDirtyRingHarvest,
  kvmGetDirtyLog,
  kvmResetDirtyRings,
  kvmSetMemslotFlags,
} from "../kvm/dirty_log.js";
import type { Kvm, Vcpu } from "../kvm/kvm.js";
import type { Memslot } from "../kvm/memslot.js";
import type { DirtySource } from "./migration.js";
import type { QemuVm } from "./vm.js";

/** x-clear-bitmap-shift's default (CLEAR_BITMAP_SHIFT_DEFAULT): chunks of 2^18 pages, 1 GiB. */
export const CLEAR_BITMAP_SHIFT_DEFAULT = 18;
/** CLEAR_BITMAP_SHIFT_MIN: 64 pages, KVM_CLEAR_DIRTY_LOG's granule. */
export const CLEAR_BITMAP_SHIFT_MIN = 6;

/** How QEMU harvests the log: kvm_state->manual_dirty_log_protect and kvm_dirty_ring_enabled(). */
export type DirtyHarvest = "get" | "manual" | "ring";

abstract class KvmDirtySource implements DirtySource {
  /** The VM's RAM memslots in ram_addr order (QemuVm adds them in the order of its ranges) and each one's first RAM page. */
  protected readonly slots: Memslot[];
  protected readonly base: number[] = [];

  constructor(protected readonly vm: QemuVm) {
    this.slots = [...vm.kvm.memslots.slots].sort((a, b) => a.id - b.id);
    let b = 0;
    for (const s of this.slots) {
      this.base.push(b);
      b += s.npages;
    }
  }

  start(): void {
    for (const s of this.slots) kvmSetMemslotFlags(this.vm.kvm, s.id, KVM_MEM_LOG_DIRTY_PAGES);
    this.vm.dirtyMemoryMigration = new Uint8Array(this.vm.cfg.ram / PAGE_SIZE);
  }

  sync(out: Uint8Array): number {
    return this.syncKvm(out) + this.syncOwn(out);
  }

  clearBeforeSend(_page: number): void {}

  stop(): void {
    for (const s of this.slots) kvmSetMemslotFlags(this.vm.kvm, s.id, 0);
    this.vm.dirtyMemoryMigration = null;
  }

  /** KVM's dirty pages into `out`; how many were new there. */
  protected abstract syncKvm(out: Uint8Array): number;

  /** ORs the bits of slot `k`'s bitmap `words` into `out`; how many were new. */
  protected orBitmap(k: number, words: Uint32Array, out: Uint8Array): number {
    let n = 0;
    const base = this.base[k]!;
    for (let w = 0; w < Math.ceil(this.slots[k]!.npages / 32); w++) {
      for (let m = words[w]!; m !== 0; m &= m - 1) {
        const i = base + w * 32 + (31 - Math.clz32(m & -m));
        if (out[i] === 0) n++;
        out[i] = 1;
      }
    }
    return n;
  }

  /** QEMU's own writes (ram_list.dirty_memory[DIRTY_MEMORY_MIGRATION]). */
  private syncOwn(out: Uint8Array): number {
    const own = this.vm.dirtyMemoryMigration;
    if (own === null) return 0;
    let n = 0;
    for (let i = 0; i < own.length; i++) {
      if (own[i] === 0) continue;
      own[i] = 0;
      if (out[i] === 0) n++;
      out[i] = 1;
    }
    return n;
  }
}

/** KVM_GET_DIRTY_LOG, which returns and re-protects in one call (kvm_get_dirty_log_protect()). */
class GetDirtySource extends KvmDirtySource {
  private readonly words: Uint32Array;
  constructor(vm: QemuVm) {
    super(vm);
    this.words = new Uint32Array(dirtyBitmapWords(Math.max(...this.slots.map((s) => s.npages))));
  }

  protected syncKvm(out: Uint8Array): number {
    let n = 0;
    this.slots.forEach((s, k) => {
      this.words.fill(0);
      this.vm.kvm.stats.dirty_pages_harvested += kvmGetDirtyLog(this.vm.kvm, s.id, this.words);
      n += this.orBitmap(k, this.words, out);
    });
    return n;
  }
}

/** Manual protect: get at the sync, KVM_CLEAR_DIRTY_LOG per chunk just before its first page is sent. */
class ManualDirtySource extends KvmDirtySource {
  /** KVMSlot.dirty_bmap: what the last gets returned and no clear has taken back yet. */
  private readonly dirtyBmap: Uint32Array[];
  /** RAMBlock.clear_bmap: one byte per chunk of 2^shift RAM pages. */
  private readonly clearBmap: Uint8Array;
  /** Pages per chunk, 2^clear_bitmap_shift. */
  private readonly chunk: number;

  constructor(vm: QemuVm, shift: number) {
    super(vm);
    this.chunk = 2 ** shift;
    this.dirtyBmap = this.slots.map((s) => new Uint32Array(dirtyBitmapWords(s.npages)));
    this.clearBmap = new Uint8Array(Math.ceil(vm.cfg.ram / PAGE_SIZE / this.chunk));
  }

  /** ram_init_bitmaps(): logging starts, then a first sync (with initially-set, every page is dirty and every chunk to clear). */
  override start(): void {
    super.start();
    this.syncKvm(new Uint8Array(this.vm.cfg.ram / PAGE_SIZE));
  }

  protected syncKvm(out: Uint8Array): number {
    let n = 0;
    const words = new Uint32Array(dirtyBitmapWords(Math.max(...this.slots.map((s) => s.npages))));
    this.slots.forEach((s, k) => {
      words.fill(0);
      this.vm.kvm.stats.dirty_pages_harvested += kvmGetDirtyLog(this.vm.kvm, s.id, words);
      const bm = this.dirtyBmap[k]!;
      for (let w = 0; w < bm.length; w++) {
        if (words[w] === 0) continue;
        bm[w] = (bm[w]! | words[w]!) >>> 0;
        // clear_bmap_set() for the chunk of each dirty page.
        for (let m = words[w]!; m !== 0; m &= m - 1)
          this.clearBmap[Math.floor((this.base[k]! + w * 32 + (31 - Math.clz32(m & -m))) / this.chunk)] = 1;
      }
      n += this.orBitmap(k, words, out);
    });
    return n;
  }

  /** migration_clear_memory_region_dirty_bitmap(): the chunk of `page`, once per sync. */
  override clearBeforeSend(page: number): void {
    const c = Math.floor(page / this.chunk);
    if (this.clearBmap[c] === 0) return;
    this.clearBmap[c] = 0;
    const first = c * this.chunk;
    const end = Math.min(first + this.chunk, this.vm.cfg.ram / PAGE_SIZE);
    // kvm_physical_log_clear(): the part of the chunk in each slot, the bits of dirty_bmap there.
    this.slots.forEach((s, k) => {
      const lo = Math.max(first, this.base[k]!) - this.base[k]!;
      const hi = Math.min(end, this.base[k]! + s.npages) - this.base[k]!;
      if (lo >= hi) return;
      const bm = this.dirtyBmap[k]!;
      const bits = bm.slice(lo / 32, Math.ceil(hi / 32));
      kvmClearDirtyLog(this.vm.kvm, s.id, lo, hi - lo, bits);
      bm.fill(0, lo / 32, Math.ceil(hi / 32));
    });
  }
}

/** The dirty ring: each vCPU's ring reaped into the slots' bitmaps, then the rings reset. */
class RingDirtySource extends KvmDirtySource {
  private readonly reaped: Uint8Array;
  private readonly buf = new Float64Array(4096);
  private saved: ((vcpu: Vcpu) => void) | null = null;

  constructor(vm: QemuVm) {
    super(vm);
    this.reaped = new Uint8Array(vm.cfg.ram / PAGE_SIZE);
  }

  override start(): void {
    super.start();
    const kvm = this.vm.kvm;
    this.saved = kvm.dirtyRingFullHandler;
    kvm.dirtyRingFullHandler = () => this.flush(kvm); // kvm_dirty_ring_full handling in kvm_cpu_exec()
  }

  override stop(): void {
    this.vm.kvm.dirtyRingFullHandler = this.saved;
    super.stop();
  }

  /** kvm_dirty_ring_flush(): kvm_dirty_ring_reap() over every vCPU, then KVM_RESET_DIRTY_RINGS. */
  private flush(kvm: Kvm): void {
    let n = 0;
    for (const v of kvm.vcpus) {
      for (let got = kvmDirtyRingHarvest(v, this.buf); got > 0; got = kvmDirtyRingHarvest(v, this.buf)) {
        for (let j = 0; j < got; j++) this.reaped[this.indexOf(this.buf[j]!)] = 1;
        n += got;
      }
    }
    kvmResetDirtyRings(kvm);
    kvm.stats.dirty_pages_harvested += n;
  }

  private indexOf(gfn: number): number {
    for (let k = 0; k < this.slots.length; k++) {
      const s = this.slots[k]!;
      if (gfn >= s.baseGfn && gfn < s.baseGfn + s.npages) return this.base[k]! + gfn - s.baseGfn;
    }
    throw new RangeError(`${this.vm.cfg.name}: the dirty ring returned gfn 0x${gfn.toString(16)}, outside guest RAM`);
  }

  protected syncKvm(out: Uint8Array): number {
    this.flush(this.vm.kvm);
    let n = 0;
    const r = this.reaped;
    for (let i = 0; i < r.length; i++) {
      if (r[i] === 0) continue;
      r[i] = 0;
      if (out[i] === 0) n++;
      out[i] = 1;
    }
    return n;
  }
}

/** How `kvm` was set up to log: the ring, manual protect, or plain get. */
export function dirtyHarvestOf(kvm: Kvm): DirtyHarvest {
  if (kvm.dirtyRingSize > 0) return "ring";
  return (kvm.manualDirtyLogProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0 ? "manual" : "get";
}

/** The pre-copy dirty source of `vm`: KVM's dirty log, harvested as its KVM logs. */
export function kvmDirtySource(vm: QemuVm, clearBitmapShift = CLEAR_BITMAP_SHIFT_DEFAULT): DirtySource {
  const h = dirtyHarvestOf(vm.kvm);
  if (h === "ring") return new RingDirtySource(vm);
  if (h === "manual") return new ManualDirtySource(vm, clearBitmapShift);
  return new GetDirtySource(vm);
}
