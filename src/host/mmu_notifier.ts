// SPDX-License-Identifier: MIT
// The mmu_notifier chain (include/linux/mmu_notifier.h, mm/mmu_notifier.c): how the host
// mm tells secondary MMUs (KVM's EPT/NPT/shadow tables) that a range of an mm's PTEs is
// about to change, and asks them whether a page was young. This layer owns the
// interface; kvm/ implements it and registers on the VMM's mm.
//
// Called at the points Linux calls them: invalidate_range_start/end around reclaim's
// unmap (try_to_unmap_one), munmap, MADV_DONTNEED/FREE, copy-on-write (wp_page_copy),
// THP split and the huge zero page write; clear_flush_young from folio_referenced_one();
// release from exit_mmap(). Never on a first fault or a swap-in (nothing was mapped).
// change_pte is not modelled: it was removed in Linux 6.10.

import type { EventBus } from "../hw/events.js";
import type { HostEventMap } from "./host_events.js";

/** enum mmu_notifier_event. */
export type MmuNotifyEvent = "unmap" | "clear" | "protection_vma" | "protection_page" | "soft_dirty" | "release" | "migrate" | "exclusive";

/** struct mmu_notifier_range: [start, end) of `mm`'s virtual addresses. */
export interface MmuNotifierRange {
  readonly mm: NotifierMm;
  readonly start: number;
  readonly end: number;
  readonly event: MmuNotifyEvent;
}

/** What a notifier sees of an mm (the host's Mm implements it). */
export interface NotifierMm {
  readonly id: number;
  readonly name: string;
}

/** struct mmu_notifier_ops, as KVM implements it (kvm_mmu_notifier_*). */
export interface MmuNotifier {
  /** Before the primary MMU removes or replaces PTEs in the range: drop secondary mappings, flush. */
  invalidateRangeStart(range: MmuNotifierRange): void;
  /** After the change: secondary MMUs may map the range again. */
  invalidateRangeEnd(range: MmuNotifierRange): void;
  /** Test and clear the accessed state of [start, end), flushing if needed; true if any was young. */
  clearFlushYoung(mm: NotifierMm, start: number, end: number): boolean;
  /** Same without a TLB flush. */
  clearYoung(mm: NotifierMm, start: number, end: number): boolean;
  /** Whether `addr` is young, without clearing it. */
  testYoung(mm: NotifierMm, addr: number): boolean;
  /** The mm is going away: drop everything (exit_mmap or unregister). */
  release(mm: NotifierMm): void;
}

/** The per-mm subscription list (mm->notifier_subscriptions) and its in-progress ranges. */
export class MmuNotifierChain {
  /** Subscriptions, oldest first; calls go newest first (hlist_add_head). */
  readonly subscriptions: MmuNotifier[] = [];
  /** Invalidations between start and end (they may nest). */
  readonly active: MmuNotifierRange[] = [];
  released = false;
  /**
   * A scheduler's hook between invalidate_range_start and the host's PTE change (null: none):
   * what another CPU may do while the invalidation is open (memvirt check runs a KVM fault there).
   */
  racePoint: ((range: MmuNotifierRange) => void) | null = null;

  get hasSubscriptions(): boolean {
    return this.subscriptions.length > 0;
  }

  /** Whether an invalidation in progress covers [start, end). */
  covers(start: number, end: number): boolean {
    for (const r of this.active) if (r.start <= start && end <= r.end) return true;
    return false;
  }
}

/** mmu_notifier_invalidate_range_start(). */
export function invalidateRangeStart(bus: EventBus<HostEventMap>, chain: MmuNotifierChain, range: MmuNotifierRange): void {
  if (bus.on) bus.emit("host.notifier.start", { mm: range.mm.id, start: range.start, end: range.end, event: range.event });
  chain.active.push(range);
  const subs = chain.subscriptions;
  for (let i = subs.length - 1; i >= 0; i--) subs[i]!.invalidateRangeStart(range);
  if (chain.racePoint !== null) chain.racePoint(range);
}

/** mmu_notifier_invalidate_range_end(). */
export function invalidateRangeEnd(bus: EventBus<HostEventMap>, chain: MmuNotifierChain, range: MmuNotifierRange): void {
  const subs = chain.subscriptions;
  for (let i = subs.length - 1; i >= 0; i--) subs[i]!.invalidateRangeEnd(range);
  const idx = chain.active.lastIndexOf(range);
  if (idx >= 0) chain.active.splice(idx, 1);
  if (bus.on) bus.emit("host.notifier.end", { mm: range.mm.id, start: range.start, end: range.end, event: range.event });
}

/** mmu_notifier_clear_flush_young(): OR of every subscriber's answer. */
export function notifierClearFlushYoung(
  bus: EventBus<HostEventMap>,
  chain: MmuNotifierChain,
  mm: NotifierMm,
  start: number,
  end: number,
): boolean {
  const subs = chain.subscriptions;
  if (subs.length === 0) return false;
  let young = false;
  for (let i = subs.length - 1; i >= 0; i--) young = subs[i]!.clearFlushYoung(mm, start, end) || young;
  if (bus.on) bus.emit("host.notifier.clear_flush_young", { mm: mm.id, start, end, young: young ? 1 : 0 });
  return young;
}

/** __mmu_notifier_release(): call release on each subscriber, then unhook them all. */
export function notifierRelease(bus: EventBus<HostEventMap>, chain: MmuNotifierChain, mm: NotifierMm): void {
  if (bus.on) bus.emit("host.notifier.release", { mm: mm.id });
  const subs = chain.subscriptions.splice(0);
  for (let i = subs.length - 1; i >= 0; i--) subs[i]!.release(mm);
  chain.released = true;
}
