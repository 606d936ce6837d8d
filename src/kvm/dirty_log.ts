// SPDX-License-Identifier: MIT
// KVM's dirty logging API (virt/kvm/kvm_main.c, virt/kvm/dirty_ring.c, arch/x86/kvm/x86.c,
// mmu/mmu.c): KVM_MEM_LOG_DIRTY_PAGES on a memslot, KVM_GET_DIRTY_LOG, manual protect with
// KVM_CLEAR_DIRTY_LOG, and the dirty ring. Logging write-protects the slot's sptes (TDP:
// kvm_tdp_mmu_wrprot_slot(); shadow: slot_rmap_write_protect()); the write fault on such an
// spte marks the page dirty (mark_page_dirty_in_slot(), see dirty_mark.ts). Huge pages are split
// when logging starts (eager_page_split) or on the first write, and recovered when it stops.
//
// With PML (pml.ts, kvm.enablePml) the CPU logs writes: logging clears D bits of 4 KiB leaves
// instead of write-protecting them, and a harvest first flushes the vCPUs' PML buffers.
// simplified: the dirty ring may be enabled after the vCPUs exist, as long as no slot logs yet.

import {
  KVM_DIRTY_GFN_F_DIRTY,
  KVM_DIRTY_GFN_F_RESET,
  KVM_DIRTY_RING_MAX_ENTRIES,
  KVM_DIRTY_RING_RSVD_ENTRIES,
  KvmDirtyRing,
} from "./dirty_ring.js";
import { dirtyLogWork } from "./dirty_log_work.js";
import { EXITING_GUEST_MODE, IN_GUEST_MODE, type Kvm, type Vcpu } from "./kvm.js";
import { type Memslot, gfnToHva, kvmSlotDirtyTrackEnabled, slotMaxLevel } from "./memslot.js";
import { PML_LOG_NR_ENTRIES } from "../hw/mmu_defs.js";
import { ShadowMmu } from "./shadow_mmu.js";
import { TdpMmu } from "./tdp_mmu.js";

export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1;
export const KVM_DIRTY_LOG_INITIALLY_SET = 2;
/** KVM_DIRTY_LOG_MANUAL_CAPS. */
const KVM_DIRTY_LOG_MANUAL_CAPS = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;

/** An ioctl KVM refuses: the errno and why. */
export class KvmIoctlError extends RangeError {}

function slotById(kvm: Kvm, slotId: number): Memslot {
  for (const s of kvm.memslots.slots) if (s.id === slotId) return s;
  throw new KvmIoctlError(`${kvm.name}: no memslot ${slotId} (-ENOENT)`);
}

/** kvm_dirty_bitmap_bytes() in 32-bit words: npages rounded up to a multiple of 64 bits. */
export function dirtyBitmapWords(npages: number): number {
  return Math.ceil(npages / 64) * 2;
}

/** kvm_dirty_log_manual_protect_and_init_set(). */
function manualProtectAndInitSet(kvm: Kvm): boolean {
  return (kvm.manualDirtyLogProtect & KVM_DIRTY_LOG_INITIALLY_SET) !== 0;
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * KVM_SET_USER_MEMORY_REGION changing only flags (KVM_MR_FLAGS_ONLY): the dirty bitmap is
 * allocated (all set with initially-set) or freed (kvm_prepare_memory_region()), then
 * kvm_mmu_slot_apply_flags().
 */
export function kvmSetMemslotFlags(kvm: Kvm, slotId: number, flags: number): void {
  const slot = slotById(kvm, slotId);
  if ((flags & ~KVM_MEM_LOG_DIRTY_PAGES) !== 0)
    throw new KvmIoctlError(`${kvm.name}: memslot flags 0x${flags.toString(16)}: only KVM_MEM_LOG_DIRTY_PAGES (1) is modelled (-EINVAL)`);
  const was = kvmSlotDirtyTrackEnabled(slot);
  const on = (flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
  if (was === on) return;
  if (on && kvm.dirtyRingSize === 0) {
    slot.dirtyBitmap = new Uint32Array(dirtyBitmapWords(slot.npages));
    if (manualProtectAndInitSet(kvm))
      for (let i = 0; i < slot.npages; i++) slot.dirtyBitmap[i >>> 5] = slot.dirtyBitmap[i >>> 5]! | (1 << (i & 31));
  } else if (!on) {
    slot.dirtyBitmap = null;
  }
  slot.flags = flags;
  kvmUpdateCpuDirtyLogging(kvm);
  kvmMmuSlotApplyFlags(kvm, slot, on);
  if (kvm.bus.on) kvm.bus.emit("kvm.dirty_log", { vm: kvm.name, slot: slot.id, op: on ? "start" : "stop", pages: 0 });
}

/** kvm_mmu_slot_apply_flags(): start (split, write-protect, flush) or stop (recover huge pages). */
function kvmMmuSlotApplyFlags(kvm: Kvm, slot: Memslot, on: boolean): void {
  const start = slot.baseGfn;
  const end = slot.baseGfn + slot.npages;
  const mmu = kvm.mmu;
  if (!on) {
    // kvm_mmu_recover_huge_pages() (Linux 6.12+; older kernels zapped the collapsible sptes).
    const level = (gfn: number) => maxMappingLevel(kvm, slot, gfn);
    let n = 0;
    if (mmu instanceof TdpMmu) n = mmu.recoverHugePages(start, end, level);
    else if (mmu instanceof ShadowMmu) n = mmu.zapCollapsibleSptes(start, end, level);
    dirtyLogWork(kvm).hugeRecovered += n;
    if (n > 0) kvm.flushRemoteTlbs();
    return;
  }
  // Initially-all-set needs no write protection: every page counts as dirty until cleared.
  if (manualProtectAndInitSet(kvm)) return;
  if (kvm.eagerPageSplit) kvmMmuSlotTrySplitHugePages(kvm, start, end);
  if (cpuDirtyLogSize(kvm) > 0 && mmu instanceof TdpMmu) {
    // PML: kvm_mmu_slot_leaf_clear_dirty(), and kvm_mmu_slot_remove_write_access(PG_LEVEL_2M) so huge pages split on write.
    mmu.clearDirtyGfnRange(start, end);
    mmu.wrprotGfnRange(start, end, 2);
  }
  // kvm_mmu_slot_remove_write_access(kvm, slot, PG_LEVEL_4K), then an unconditional flush.
  else if (mmu instanceof TdpMmu) dirtyLogWork(kvm).sptesWrprot += mmu.wrprotGfnRange(start, end, 1);
  else if (mmu instanceof ShadowMmu) dirtyLogWork(kvm).sptesWrprot += mmu.slotRemoveWriteAccess(start, end);
  kvm.flushRemoteTlbs();
}

/** kvm_mmu_slot_try_split_huge_pages() to 4 KiB: the TDP MMU's (shadow paging's own huge pages are not split eagerly). */
function kvmMmuSlotTrySplitHugePages(kvm: Kvm, start: number, end: number): void {
  const mmu = kvm.mmu;
  const n = mmu instanceof TdpMmu ? mmu.splitHugePages(start, end) : 0;
  if (n > 0) dirtyLogWork(kvm).hugeSplits += n;
  if (n < 0) throw new KvmIoctlError(`${kvm.name}: the host is out of memory for the tables of an eager huge-page split`);
}

/** kvm_mmu_max_mapping_level(): the host mapping level, capped by the slot. */
function maxMappingLevel(kvm: Kvm, slot: Memslot, gfn: number): number {
  return Math.min(kvm.host.hostMappingLevel(gfnToHva(slot, gfn)), slotMaxLevel(slot, gfn));
}

/**
 * kvm_arch_mmu_enable_log_dirty_pt_masked(): re-protects the pages of the 32-bit `mask` from
 * slot offset `offset`. With initially-set, huge pages there are split (eagerly) or write-protected first.
 */
function enableLogDirtyPtMasked(kvm: Kvm, slot: Memslot, offset: number, mask: number): void {
  const gfn0 = slot.baseGfn + offset;
  const mmu = kvm.mmu;
  const work = dirtyLogWork(kvm);
  if (manualProtectAndInitSet(kvm)) {
    const first = gfn0 + (31 - Math.clz32(mask & -mask));
    const last = gfn0 + (31 - Math.clz32(mask));
    if (kvm.eagerPageSplit) kvmMmuSlotTrySplitHugePages(kvm, first, last + 1);
    // kvm_mmu_slot_gfn_write_protect(PG_LEVEL_2M) at both ends (the range may cross two huge pages).
    if (mmu instanceof TdpMmu) {
      work.sptesWrprot += mmu.wrprotGfnRange(first, first + 1, 2);
      work.sptesWrprot += mmu.wrprotGfnRange(last, last + 1, 2);
    } else if (mmu instanceof ShadowMmu) {
      work.sptesWrprot += mmu.gfnWriteProtect(first, 2);
      work.sptesWrprot += mmu.gfnWriteProtect(last, 2);
    }
  }
  // kvm_mmu_clear_dirty_pt_masked() with PML, else kvm_mmu_write_protect_pt_masked().
  if (mmu instanceof TdpMmu) work.sptesWrprot += mmu.clearDirtyPtMasked(gfn0, mask, cpuDirtyLogSize(kvm) === 0);
  else if (mmu instanceof ShadowMmu) {
    for (let m = mask; m !== 0; m &= m - 1) work.sptesWrprot += mmu.gfnWriteProtect(gfn0 + (31 - Math.clz32(m & -m)), 1);
  }
}

/**
 * enable_pml for this VM: dirty logging through the CPU's page-modification log. VMX turns PML
 * off without EPT A/D bits (hardware_setup()); SVM and shadow paging have none.
 */
export function kvmEnablePml(kvm: Kvm): void {
  if (kvm.opts.mode !== "ept" || !kvm.opts.eptAd)
    throw new KvmIoctlError(
      `${kvm.name}: PML needs EPT with accessed/dirty flags (mmu ept), not ${kvm.opts.mode}${kvm.opts.mode === "ept" ? " without A/D" : ""}`,
    );
  if (kvm.dirtyRingSize > 0)
    throw new KvmIoctlError(`${kvm.name}: memvirt models PML with the dirty bitmaps only, not with the dirty ring`);
  kvm.enablePml = true;
}

// ---- PML (pml.ts has vmx_flush_pml_buffer())

/** kvm_x86_ops.cpu_dirty_log_size: the PML buffer's entries with PML, else 0 (logging write-protects). */
function cpuDirtyLogSize(kvm: Kvm): number {
  return kvm.enablePml ? PML_LOG_NR_ENTRIES : 0;
}

/**
 * kvm_mmu_update_cpu_dirty_logging() -> vmx_update_cpu_dirty_logging(): the PML control of
 * every vCPU on while any memslot logs dirty pages.
 * simplified: set at once, not through KVM_REQ_UPDATE_CPU_DIRTY_LOGGING at each vCPU's next entry.
 */
function kvmUpdateCpuDirtyLogging(kvm: Kvm): void {
  if (!kvm.enablePml) return;
  const on = kvm.memslots.slots.some(kvmSlotDirtyTrackEnabled);
  for (const v of kvm.vcpus) v.mmu.pmlOn = on;
}

/**
 * kvm_arch_sync_dirty_log(): with PML, every vCPU is kicked, and the VM exit of the kick
 * flushes its buffer before the dirty bitmap is read.
 * simplified: a vCPU in guest mode takes the kick's exit at once (it is between accesses), so the
 * harvest sees its buffer flushed; KVM does not wait for the IPI's exit.
 */
function kvmArchSyncDirtyLog(kvm: Kvm): void {
  if (!kvm.enablePml) return;
  for (const v of kvm.vcpus) {
    v.kick();
    if (v.mode !== EXITING_GUEST_MODE) continue;
    v.kickExit();
    v.mode = IN_GUEST_MODE;
  }
}

/** KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2). */
export function kvmEnableManualDirtyLogProtect(kvm: Kvm, flags: number): void {
  if ((flags & ~KVM_DIRTY_LOG_MANUAL_CAPS) !== 0)
    throw new KvmIoctlError(
      `${kvm.name}: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 flags 0x${flags.toString(16)}: only 1 (enable) and 2 (initially set) exist (-EINVAL)`,
    );
  kvm.manualDirtyLogProtect = flags;
}

function loggingSlot(kvm: Kvm, slotId: number, ioctl: string, bitmap: Uint32Array, pages: number): Memslot {
  if (pages < 0) pages = slotById(kvm, slotId).npages;
  if (kvm.dirtyRingSize > 0) throw new KvmIoctlError(`${kvm.name}: ${ioctl} with the dirty ring in use (-ENXIO)`);
  const slot = slotById(kvm, slotId);
  if (slot.dirtyBitmap === null || slot.dirtyBitmap === undefined)
    throw new KvmIoctlError(`${kvm.name}: ${ioctl} on memslot ${slotId}, which does not log dirty pages (-ENOENT)`);
  if (bitmap.length * 32 < pages)
    throw new KvmIoctlError(`${kvm.name}: ${ioctl}: a bitmap of ${bitmap.length * 32} bits for ${pages} pages (-EFAULT)`);
  return slot;
}

/**
 * KVM_GET_DIRTY_LOG (kvm_get_dirty_log_protect()): the slot's dirty bits into `bitmap` (bit i
 * <-> gfn baseGfn + i). Without manual protect the log is also cleared and those pages
 * re-protected, with one flush. Returns the number of dirty pages.
 */
export function kvmGetDirtyLog(kvm: Kvm, slotId: number, bitmap: Uint32Array): number {
  const slot = loggingSlot(kvm, slotId, "KVM_GET_DIRTY_LOG", bitmap, -1);
  kvmArchSyncDirtyLog(kvm);
  const bm = slot.dirtyBitmap!;
  const words = Math.ceil(slot.npages / 32);
  // kvm_get_dirty_log_protect(): every unsigned long of the slot's bitmap.
  dirtyLogWork(kvm).bitmapWords += Math.ceil(slot.npages / 64);
  let n = 0;
  if ((kvm.manualDirtyLogProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0) {
    for (let i = 0; i < words; i++) {
      bitmap[i] = bm[i]!;
      n += popcount(bm[i]!);
    }
  } else {
    for (let i = 0; i < words; i++) {
      const mask = bm[i]!;
      bitmap[i] = mask;
      if (mask === 0) continue;
      bm[i] = 0;
      n += popcount(mask);
      enableLogDirtyPtMasked(kvm, slot, i * 32, mask);
    }
    if (n > 0) kvm.flushRemoteTlbs();
  }
  if (kvm.bus.on) kvm.bus.emit("kvm.dirty_log", { vm: kvm.name, slot: slotId, op: "get", pages: n });
  return n;
}

/**
 * KVM_CLEAR_DIRTY_LOG (kvm_clear_dirty_log_protect()): for the pages [firstPage, firstPage +
 * numPages) whose bit is set in `bitmap` (bit i <-> page firstPage + i) and in the log, the bit
 * is cleared and the page re-protected. firstPage must be a multiple of 64, and numPages too
 * unless the range ends the slot. Returns how many pages were cleared.
 */
export function kvmClearDirtyLog(kvm: Kvm, slotId: number, firstPage: number, numPages: number, bitmap: Uint32Array): number {
  const slot = loggingSlot(kvm, slotId, "KVM_CLEAR_DIRTY_LOG", bitmap, numPages);
  if (firstPage % 64 !== 0)
    throw new KvmIoctlError(`${kvm.name}: KVM_CLEAR_DIRTY_LOG first_page ${firstPage} is not a multiple of 64 (-EINVAL)`);
  if (firstPage > slot.npages || numPages > slot.npages - firstPage || (numPages < slot.npages - firstPage && numPages % 64 !== 0))
    throw new KvmIoctlError(
      `${kvm.name}: KVM_CLEAR_DIRTY_LOG pages ${firstPage}+${numPages} of a ${slot.npages}-page slot: the count must be a multiple of 64 unless it ends the slot (-EINVAL)`,
    );
  kvmArchSyncDirtyLog(kvm);
  const bm = slot.dirtyBitmap!;
  dirtyLogWork(kvm).bitmapWords += Math.ceil(numPages / 64);
  let n = 0;
  for (let j = 0, w = firstPage / 32; j < Math.ceil(numPages / 32); j++, w++) {
    const mask = (bitmap[j]! & bm[w]!) >>> 0;
    if (mask === 0) continue;
    bm[w] = (bm[w]! & ~mask) >>> 0;
    n += popcount(mask);
    enableLogDirtyPtMasked(kvm, slot, w * 32, mask);
  }
  if (n > 0) kvm.flushRemoteTlbs();
  if (kvm.bus.on) kvm.bus.emit("kvm.dirty_log", { vm: kvm.name, slot: slotId, op: "clear", pages: n });
  return n;
}

/**
 * KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING) (kvm_vm_ioctl_enable_dirty_log_ring()): every vCPU
 * gets a ring of `entries` (a power of two); the memslots then log into the rings, not bitmaps.
 */
export function kvmEnableDirtyRing(kvm: Kvm, entries: number): void {
  if (
    !Number.isInteger(entries) ||
    entries <= KVM_DIRTY_RING_RSVD_ENTRIES ||
    entries > KVM_DIRTY_RING_MAX_ENTRIES ||
    (entries & (entries - 1)) !== 0
  )
    throw new KvmIoctlError(
      `${kvm.name}: dirty ring of ${entries} entries: a power of two above ${KVM_DIRTY_RING_RSVD_ENTRIES} (the reserved entries) and at most ${KVM_DIRTY_RING_MAX_ENTRIES} (-EINVAL)`,
    );
  if (kvm.dirtyRingSize > 0) throw new KvmIoctlError(`${kvm.name}: the dirty ring is already enabled (-EBUSY)`);
  if (kvm.memslots.slots.some(kvmSlotDirtyTrackEnabled))
    throw new KvmIoctlError(`${kvm.name}: enable the dirty ring before dirty logging starts (-EINVAL)`);
  kvm.dirtyRingSize = entries;
  for (const v of kvm.vcpus) v.dirtyRing = new KvmDirtyRing(entries, entries - KVM_DIRTY_RING_RSVD_ENTRIES);
}

/**
 * The VMM collecting a vCPU's ring (QEMU's kvm_dirty_ring_reap_one()): each entry KVM marked
 * dirty, in order, becomes a gfn in `out` and is flagged for reset. Returns how many.
 */
export function kvmDirtyRingHarvest(vcpu: Vcpu, out: Float64Array): number {
  const ring = vcpu.dirtyRing;
  if (ring === null) throw new KvmIoctlError(`${vcpu.kvm.name}: vCPU ${vcpu.id} has no dirty ring`);
  const slots = vcpu.kvm.memslots.slots;
  let n = 0;
  while (n < out.length) {
    const i = ring.fetchIndex & (ring.size - 1);
    if (ring.flags[i] !== KVM_DIRTY_GFN_F_DIRTY) break;
    const slot = slots.find((s) => s.id === ring.slot[i])!;
    out[n++] = slot.baseGfn + ring.offset[i]!;
    ring.flags[i] = KVM_DIRTY_GFN_F_RESET;
    ring.fetchIndex++;
  }
  return n;
}

/** KVM_RESET_DIRTY_RINGS (kvm_dirty_ring_reset() per vCPU): collected entries re-protect their pages; one flush. Returns how many. */
export function kvmResetDirtyRings(kvm: Kvm): number {
  let cleared = 0;
  for (const v of kvm.vcpus) {
    const ring = v.dirtyRing;
    if (ring === null) continue;
    while (ring.resetIndex < ring.dirtyIndex) {
      const i = ring.resetIndex & (ring.size - 1);
      if (ring.flags[i] !== KVM_DIRTY_GFN_F_RESET) break;
      ring.flags[i] = 0;
      ring.resetIndex++;
      cleared++;
      // kvm_reset_dirty_gfn(); simplified: one entry at a time, not coalesced into 64-page masks.
      const slot = kvm.memslots.slots.find((s) => s.id === ring.slot[i]);
      if (slot !== undefined && kvmSlotDirtyTrackEnabled(slot)) enableLogDirtyPtMasked(kvm, slot, ring.offset[i]!, 1);
    }
    if (!ring.softFull()) ring.softFullRequest = false;
  }
  if (cleared > 0) kvm.flushRemoteTlbs();
  if (kvm.bus.on) kvm.bus.emit("kvm.dirty_log", { vm: kvm.name, slot: -1, op: "reset", pages: cleared });
  return cleared;
}

/**
 * kvm_dirty_ring_check_request() at VM entry: a soft-full ring exits to userspace
 * (KVM_EXIT_DIRTY_RING_FULL); the VMM collects and resets the rings before the vCPU runs again.
 */
export function kvmDirtyRingCheckRequest(vcpu: Vcpu): void {
  const ring = vcpu.dirtyRing!;
  if (!ring.softFull()) {
    ring.softFullRequest = false;
    return;
  }
  vcpu.stats.dirty_ring_full_exits++;
  const handler = vcpu.kvm.dirtyRingFullHandler;
  if (handler !== null) handler(vcpu);
  if (ring.softFull())
    throw new KvmIoctlError(
      `${vcpu.kvm.name}: vCPU ${vcpu.id}: KVM_EXIT_DIRTY_RING_FULL and the VMM did not collect and reset the dirty rings`,
    );
  ring.softFullRequest = false;
}
