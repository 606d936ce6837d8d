// SPDX-License-Identifier: MIT
// The story's map of host frames, one cell per 4 KiB frame, coloured by owner and state:
// free, the zero page, host page tables, EPT/NPT tables, guest RAM on the active or the
// inactive LRU list, guest page tables, pages in the swap cache. The worker reads the
// host's per-frame flags at each chapter (exact); the page then replays the events of the
// chapter's window that name a frame (allocations, frees, activations, swap), so the map
// moves as the story plays.

import type { SimEvent } from "../hw/events.js";
import { PG_active, PG_anon, PG_buddy, PG_pgtable, PG_reserved, PG_swapcache } from "../host/page_flags.js";
import type { Machine } from "../sim/machine.js";

export const F_FREE = 0;
export const F_RESERVED = 1;
export const F_HOST_PT = 2;
export const F_EPT = 3;
export const F_ACTIVE = 4;
export const F_INACTIVE = 5;
export const F_GUEST_PT = 6;
export const F_SWAPCACHE = 7;
export const F_OTHER = 8;

/** Okabe-Ito colours; the legend also gives each state's count, so colour is never the only cue. */
export const FRAME_STATES: readonly { id: number; name: string; color: string; description: string }[] = [
  { id: F_FREE, name: "free", color: "#e4e4e4", description: "in the buddy allocator" },
  { id: F_RESERVED, name: "zero page / reserved", color: "#000000", description: "the shared zero page and other reserved frames" },
  { id: F_HOST_PT, name: "host page tables", color: "#cc79a7", description: "QEMU's page tables (the host's own)" },
  { id: F_EPT, name: "EPT/NPT tables", color: "#e69f00", description: "KVM's tables for the guest (kvm-mmu allocations)" },
  { id: F_ACTIVE, name: "guest RAM, active LRU", color: "#0072b2", description: "pages of QEMU's guest RAM on the active anon list" },
  { id: F_INACTIVE, name: "guest RAM, inactive LRU", color: "#56b4e9", description: "pages of QEMU's guest RAM on the inactive anon list" },
  { id: F_GUEST_PT, name: "guest page tables", color: "#009e73", description: "guest RAM holding the guest's own page tables" },
  { id: F_SWAPCACHE, name: "swap cache", color: "#d55e00", description: "a page with a swap slot, still in memory" },
  { id: F_OTHER, name: "other", color: "#8c8c8c", description: "allocated for something else" },
];

/** Largest map sent: bigger hosts are sampled every k-th frame. */
export const MAX_CELLS = 1 << 18;

/** Follows the event stream for what the frame flags do not say: allocation purposes and guest page-table frames. */
export class FrameTracker {
  /** gfns that hold guest page tables (from the guest's own page-table writes). */
  readonly guestTableGfns = new Set<number>();
  /** pfns allocated for KVM's EPT/NPT tables. */
  readonly kvmFrames = new Set<number>();

  onEvent(e: SimEvent): void {
    if (e.kind === "guest.pte_write") this.guestTableGfns.add(Math.floor(Number(e.gpa) / 4096));
    else if (e.kind === "host.page_alloc" && e.purpose === "kvm-mmu") this.kvmFrames.add(Number(e.pfn));
    else if (e.kind === "host.free") this.kvmFrames.delete(Number(e.pfn));
  }
}

/** The state of every host frame now (sampled to at most MAX_CELLS cells); `step` says how many frames one cell stands for. */
export function frameMap(m: Machine, t: FrameTracker): { cells: Uint8Array; step: number } {
  const meta = m.host.meta;
  const n = meta.nframes;
  const state = new Uint8Array(n).fill(F_OTHER);
  // QEMU's guest RAM: hva -> gpa, to tell the guest's page tables from its data.
  const vm = m.vms[0];
  const mmId = vm?.qemu.mm.id ?? -1;
  const ramHva = vm ? vm.qemu.gpaToHva(vm.qemu.ranges[0]?.start ?? 0) : -1;
  const starts: number[] = [];
  if (vm) {
    let off = 0;
    for (const r of vm.qemu.ranges) {
      starts.push(off, r.start, r.end - r.start);
      off += r.end - r.start;
    }
  }
  const gfnOf = (hva: number): number => {
    const rel = hva - ramHva;
    for (let i = 0; i < starts.length; i += 3) {
      if (rel >= starts[i]! && rel < starts[i]! + starts[i + 2]!) return Math.floor((starts[i + 1]! + rel - starts[i]!) / 4096);
    }
    return -1;
  };
  // Whole max-order blocks never handed out are free but carry no PG_buddy (buddy.ts's pristine region).
  const buddy = m.host.buddy;
  for (let pfn = 0; pfn < n; pfn++) {
    if (pfn >= buddy.pristine && pfn < buddy.pristineEnd) {
      state.fill(F_FREE, pfn, buddy.pristineEnd);
      pfn = buddy.pristineEnd - 1;
      continue;
    }
    const f = meta.flags[pfn]!;
    if (f & PG_buddy) {
      const size = 2 ** meta.order[pfn]!;
      state.fill(F_FREE, pfn, Math.min(n, pfn + size));
      pfn += size - 1;
      continue;
    }
    if (f & PG_reserved) state[pfn] = F_RESERVED;
    else if (f & PG_pgtable) state[pfn] = F_HOST_PT;
    else if (t.kvmFrames.has(pfn)) state[pfn] = F_EPT;
    else if (f & PG_swapcache) state[pfn] = F_SWAPCACHE;
    else if (f & PG_anon) {
      const gfn = meta.mapMm[pfn] === mmId ? gfnOf(meta.mapAddr[pfn]!) : -1;
      state[pfn] = gfn >= 0 && t.guestTableGfns.has(gfn) ? F_GUEST_PT : f & PG_active ? F_ACTIVE : F_INACTIVE;
    }
  }
  if (n <= MAX_CELLS) return { cells: state, step: 1 };
  const step = Math.ceil(n / MAX_CELLS);
  const cells = new Uint8Array(Math.ceil(n / step));
  for (let i = 0; i < cells.length; i++) cells[i] = state[i * step]!;
  return { cells, step };
}

/** Replays one event onto a map (the page moves the chapter's map along its window). */
export function applyFrameEvent(cells: Uint8Array, step: number, e: SimEvent): void {
  const pfn = Number(e.pfn);
  if (!Number.isFinite(pfn)) return;
  const set = (v: number, frames = 1) => {
    for (let p = pfn; p < pfn + frames; p += step) {
      const i = Math.floor(p / step);
      if (i < cells.length) cells[i] = v;
    }
  };
  switch (e.kind) {
    case "host.page_alloc":
      set(e.purpose === "kvm-mmu" ? F_EPT : e.purpose === "pgtable" ? F_HOST_PT : F_INACTIVE, 2 ** Number(e.order ?? 0));
      break;
    case "host.free":
      set(F_FREE, 2 ** Number(e.order ?? 0));
      break;
    case "host.activate":
      if (cells[Math.floor(pfn / step)] === F_INACTIVE) set(F_ACTIVE);
      break;
    case "host.swap_alloc":
      set(F_SWAPCACHE);
      break;
  }
}
