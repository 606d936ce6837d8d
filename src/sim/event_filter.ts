// SPDX-License-Identifier: MIT
// Filters for a run's event stream (`memvirt run --events` and anything else that listens):
// by kind (globs like kvm.*), by address range, the first N, and one page's life (by gpa or
// hva: every event about its gfn, its hva, the frame that backs it and the swap slot that
// holds it, followed as they change; a frame's events before the page is known to be in it,
// such as the allocation of the frame a swap-in reads into, are not). And a text line per event with addresses in hex.

import type { SimEvent } from "../hw/events.js";
import { EVENT_KINDS } from "./sim_events.js";
import { hexAddr } from "./text_format.js";

/** Fields that hold an address (bytes) or a page number (gfn, pfn): printed in hex. */
export const ADDRESS_FIELDS = new Set(["hva", "gva", "gpa", "start", "end", "cr3", "pfn", "gfn", "pgd"]);

/** Fields a range filter compares: byte addresses only. */
const BYTE_FIELDS = ["hva", "gva", "gpa", "start"] as const;

const PAGE = 4096;

export interface EventFilterOptions {
  /** Kinds to keep; an entry ending in `.*` keeps a prefix ("kvm.*"). */
  kinds?: readonly string[];
  /** Keep events with a byte address in [lo, hi). */
  range?: { lo: number; hi: number };
  /** Keep the events of one page: its guest-physical or host-virtual address. */
  page?: { space: "gpa" | "hva"; addr: number };
  /** Stop after this many kept events. */
  first?: number;
}

/** The kinds `pattern` names; empty when it names none. */
export function matchKinds(pattern: string): string[] {
  const all = Object.keys(EVENT_KINDS);
  if (pattern.endsWith(".*")) return all.filter((k) => k.startsWith(pattern.slice(0, -1)));
  return all.includes(pattern) ? [pattern] : [];
}

/** One page's identities as the run changes them: its gfn, its hva, its frame, its swap slot. */
class PageLife {
  gfn = -1;
  hva = -1;
  pfn = -1;
  slot = -1;
  private zapped = false;

  constructor(space: "gpa" | "hva", addr: number) {
    if (space === "gpa") this.gfn = Math.floor(addr / PAGE);
    else this.hva = addr - (addr % PAGE);
  }

  private hvaIn(e: SimEvent): boolean {
    if (this.hva < 0) return false;
    if (typeof e.hva === "number") return e.hva - (e.hva % PAGE) === this.hva;
    return typeof e.start === "number" && typeof e.end === "number" && e.start <= this.hva && this.hva < e.end;
  }

  /** Whether `e` is about the page; learns its new identities from it. */
  about(e: SimEvent): boolean {
    const gfn = typeof e.gfn === "number" ? e.gfn : typeof e.gpa === "number" ? Math.floor(e.gpa / PAGE) : -1;
    const byGfn = this.gfn >= 0 && gfn === this.gfn;
    const byHva = this.hvaIn(e);
    const byPfn = this.pfn >= 0 && e.pfn === this.pfn && (typeof e.hva !== "number" || byHva);
    const bySlot = this.slot >= 0 && e.slot === this.slot;
    // The TLB flush that follows KVM's zap of the page names no address.
    const flush = e.kind === "kvm.remote_tlb_flush" && this.zapped;
    this.zapped = e.kind === "kvm.notifier_zap" && byHva;
    if (!(byGfn || byHva || byPfn || bySlot || flush)) return false;
    if (e.kind === "host.swap_in" && bySlot && typeof e.pfn === "number") this.pfn = e.pfn;
    if (e.kind === "kvm.faultin" && byGfn) this.hva = Number(e.hva);
    if (e.kind === "kvm.faultin" && byHva && this.gfn < 0) this.gfn = Number(e.gfn);
    if ((e.kind === "host.rmap_add" || e.kind === "host.swap_map" || e.kind === "kvm.faultin") && typeof e.pfn === "number")
      this.pfn = e.pfn;
    if ((e.kind === "host.swap_alloc" || e.kind === "host.unmap") && typeof e.slot === "number") this.slot = e.slot;
    if (e.kind === "host.free" && byPfn) this.pfn = -1;
    if (e.kind === "host.swap_free" && bySlot) this.slot = -1;
    return true;
  }
}

export class EventFilter {
  /** Events kept so far. */
  kept = 0;
  private readonly kinds: Set<string> | null;
  private readonly life: PageLife | null;

  constructor(private readonly o: EventFilterOptions) {
    this.kinds = o.kinds === undefined ? null : new Set(o.kinds.flatMap(matchKinds));
    this.life = o.page === undefined ? null : new PageLife(o.page.space, o.page.addr);
  }

  /** True once `first` events were kept: nothing more will be. */
  get full(): boolean {
    return this.o.first !== undefined && this.kept >= this.o.first;
  }

  /** Whether to keep `e` (counted as kept when so). */
  keep(e: SimEvent): boolean {
    if (this.full) return false;
    // The page's identities change with every event about it, kept by the kind filter or not.
    const aboutPage = this.life === null || this.life.about(e);
    if (!aboutPage) return false;
    if (this.kinds !== null && !this.kinds.has(e.kind)) return false;
    if (this.o.range !== undefined && !this.inRange(e, this.o.range)) return false;
    this.kept++;
    return true;
  }

  private inRange(e: SimEvent, r: { lo: number; hi: number }): boolean {
    for (const f of BYTE_FIELDS) {
      const v = e[f];
      if (typeof v === "number" && v >= r.lo && v < r.hi) return true;
    }
    return false;
  }
}

/** One event as a line of text: `t kind field=value ...`, addresses and page numbers in hex. */
export function eventText(e: SimEvent): string {
  const parts = [String(e.t), e.kind];
  for (const [k, v] of Object.entries(e)) {
    if (k === "kind" || k === "t") continue;
    parts.push(`${k}=${typeof v === "number" && ADDRESS_FIELDS.has(k) ? hexAddr(v) : String(v)}`);
  }
  return parts.join(" ");
}
