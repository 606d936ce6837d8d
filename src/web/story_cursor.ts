// SPDX-License-Identifier: MIT
// The story's cursor: what one event touches (addresses, the host frame, the table entry it
// writes, the rmap, the LRU list, the swap slot), read from the event's own fields, and
// where the event stands in the chain it belongs to: the reclaim of one page (aging verdict
// to frame freed, shrink_folio_list() -> try_to_unmap_one() -> pageout()) or one exit
// (an EPT violation, NPF or intercepted #PF to VM entry: a fault-in or a re-fault from swap).
// Pure functions of the events: every panel of the story view reads the same cursor.

import type { SimEvent } from "../hw/events.js";
import { type MmuWords, mmuWords } from "./mmu_words.js";
import type { StoryItem } from "./protocol.js";
import type { Follow } from "./story_follow.js";

/** A table entry an event writes (or drops), in whose tables, with what it held before and after where the event says. */
export interface EntryChange {
  /** "guest": the guest's own page tables; "host": QEMU's page tables in the host; "kvm": EPT/NPT or shadow tables. */
  tables: "guest" | "host" | "kvm";
  level: number;
  /** Index in its table, where the event fixes it (-1: not known from the event alone). */
  index: number;
  before: string;
  after: string;
  /** The entry's words after the write, when the event carries them. */
  lo?: number;
  hi?: number;
}

export interface CursorObjects {
  gva?: number;
  gpa?: number;
  hva?: number;
  /** Host mm of the hva (QEMU's). */
  mm?: number;
  /** Host frame. */
  pfn?: number;
  /** Guest process. */
  pid?: number;
  /** The host-virtual range an invalidation or aging query covers. */
  range?: { start: number; end: number };
  entry?: EntryChange;
  rmap?: { op: "walk" | "add" | "remove"; pfn: number; mm: number; hva: number };
  /** The LRU list the page leaves and enters ("" for none: isolated, freed or not yet on a list). */
  lru?: { from: string; to: string; why: string };
  /** A swap slot: taken, written, read, freed or mapped again ("guest": the guest's own swap device). */
  swap?: { slot: number; op: "alloc" | "unmap" | "out" | "in" | "free" | "map"; device: "host" | "guest" };
  /** Every vCPU's TLB is flushed. */
  tlbFlush?: boolean;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const hex = (n: number) => `0x${n.toString(16)}`;
/** Index of the entry for a 4 KiB page number at `level` (bits 12+9(level-1) of the address). */
const idx = (page: number, level: number) => Math.floor(page / 512 ** (level - 1)) % 512;

function put<K extends keyof CursorObjects>(o: CursorObjects, k: K, v: CursorObjects[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

/** The objects `e` touches, from its own fields only (`mmu` says whether KVM's tables are indexed by gpa or by gva). */
export function eventObjects(e: SimEvent, opts: { mmu?: string } = {}): CursorObjects {
  const o: CursorObjects = {};
  put(o, "pfn", num(e.pfn));
  put(o, "mm", num(e.mm));
  put(o, "hva", num(e.hva));
  put(o, "gva", num(e.gva));
  put(o, "pid", num(e.pid));
  put(o, "gpa", num(e.gpa));
  const gfn = num(e.gfn);
  if (gfn !== undefined && gfn >= 0 && !e.kind.startsWith("guest.")) o.gpa = gfn * 4096;
  const start = num(e.start);
  const end = num(e.end);
  if (start !== undefined && end !== undefined) {
    o.range = { start, end };
    o.hva = start;
  }
  const slot = num(e.slot);
  const tdp = opts.mmu !== "shadow";
  switch (e.kind) {
    case "guest.pte_write": {
      const level = num(e.level) ?? 1;
      const lo = num(e.lo) ?? 0;
      const hi = num(e.hi) ?? 0;
      o.entry = {
        tables: "guest",
        level,
        index: ((num(e.gpa) ?? 0) % 4096) / 8,
        before: "",
        after: lo & 1 ? "present" : lo === 0 && hi === 0 ? "cleared" : "not present",
        lo,
        hi,
      };
      // The write is at the table's gpa, not at the page the gva maps.
      delete o.gpa;
      break;
    }
    case "guest.swap_out":
    case "guest.swap_in":
      if (gfn !== undefined) o.gpa = gfn * 4096;
      if (slot !== undefined) o.swap = { slot, op: e.kind === "guest.swap_out" ? "out" : "in", device: "guest" };
      break;
    case "kvm.exit":
      if (num(e.gpa) === undefined) delete o.gpa;
      break;
    case "kvm.spte_install": {
      const level = num(e.level) ?? 1;
      o.entry = {
        tables: "kvm",
        level,
        index: tdp && gfn !== undefined ? idx(gfn, level) : -1,
        before: "",
        after: `maps host frame ${hex(num(e.pfn) ?? 0)}${e.writable === 0 ? ", read-only" : ""}`,
      };
      break;
    }
    case "kvm.notifier_zap":
      if (gfn === undefined || gfn < 0) delete o.gpa;
      if (num(e.zapped))
        o.entry = {
          tables: "kvm",
          level: 1,
          index: tdp && gfn !== undefined && gfn >= 0 ? idx(gfn, 1) : -1,
          before: "",
          after: "zapped (not present)",
        };
      break;
    case "kvm.remote_tlb_flush":
      o.tlbFlush = true;
      break;
    case "host.rmap_walk":
    case "host.rmap_add":
    case "host.rmap_remove":
      o.rmap = {
        op: e.kind === "host.rmap_walk" ? "walk" : e.kind === "host.rmap_add" ? "add" : "remove",
        pfn: Number(e.pfn),
        mm: Number(e.mm),
        hva: Number(e.hva),
      };
      break;
    case "host.lru_add":
      o.lru = { from: "", to: String(e.lru), why: "a new page joins the LRU" };
      break;
    case "host.activate":
      o.lru = { from: "inactive_anon", to: "active_anon", why: String(e.why) };
      break;
    case "host.folio_references":
      if (e.decision === "reclaim") o.lru = { from: "inactive_anon", to: "", why: "isolated for reclaim" };
      break;
    case "host.refault":
      if (e.activate) o.lru = { from: "", to: "active_anon", why: "refault distance within the workingset" };
      break;
    case "host.free":
      o.lru = { from: "", to: "", why: "back to the buddy allocator" };
      break;
    case "host.swap_alloc":
      if (slot !== undefined) o.swap = { slot, op: "alloc", device: "host" };
      break;
    case "host.unmap":
      if (slot !== undefined) o.swap = { slot, op: "unmap", device: "host" };
      o.entry = hostPte(e, `maps host frame ${hex(num(e.pfn) ?? 0)}`, e.ok ? `swap entry (slot ${slot})` : "unchanged (unmap failed)");
      break;
    case "host.swap_out":
      if (slot !== undefined) o.swap = { slot, op: "out", device: "host" };
      break;
    case "host.swap_in":
      if (slot !== undefined) o.swap = { slot, op: "in", device: "host" };
      break;
    case "host.swap_free":
      if (slot !== undefined) o.swap = { slot, op: "free", device: "host" };
      break;
    case "host.swap_map":
      if (slot !== undefined) o.swap = { slot, op: "map", device: "host" };
      o.entry = hostPte(e, `swap entry (slot ${slot})`, `maps host frame ${hex(num(e.pfn) ?? 0)}${e.write ? ", writable" : ""}`);
      break;
    case "host.zero_page":
      o.entry = hostPte(e, "none", `maps the zero page ${hex(num(e.pfn) ?? 0)}, read-only`);
      break;
    case "host.cow":
      o.pfn = num(e.to);
      o.entry = hostPte(e, `maps the zero page ${hex(num(e.from) ?? 0)}`, `maps host frame ${hex(num(e.to) ?? 0)}, writable`);
      break;
  }
  return o;
}

/** QEMU's level-1 entry for the event's hva. */
function hostPte(e: SimEvent, before: string, after: string): EntryChange {
  return { tables: "host", level: 1, index: idx(Math.floor((num(e.hva) ?? 0) / 4096), 1), before, after };
}

// ---- chains

export type ChainName = "reclaim" | "refault" | "faultin";

export interface ChainLink {
  /** Short label, in the words of the MMU in use. */
  label: string;
  kinds: readonly string[];
}

export interface ChainPosition {
  chain: ChainName;
  links: ChainLink[];
  /** The current event's link. */
  link: number;
  /** Indices (into the events given) of the chain's events, in order. */
  members: number[];
  /** Links that an event of this chain stands on (a zap of nothing flushes no TLB: that link is skipped). */
  hit: boolean[];
  /** The page the whole chain is about, merged from its events: the followed page at every link. */
  page: { gpa?: number; hva?: number; mm?: number; pfn?: number; slot?: number; gva?: number };
}

/** shrink_folio_list() for one anonymous folio: aging, then add_to_swap(), try_to_unmap() (one rmap walk, the notifier around the PTE change), pageout(), free. */
export function reclaimLinks(w: MmuWords): ChainLink[] {
  return [
    { label: "aging: was it used? (rmap walk, accessed bits)", kinds: ["host.rmap_walk", "host.notifier.clear_flush_young"] },
    { label: "verdict: reclaim", kinds: ["host.folio_references"] },
    { label: "swap slot taken, page in the swap cache", kinds: ["host.swap_alloc"] },
    { label: "rmap walk to QEMU's PTE", kinds: ["host.rmap_walk"] },
    { label: "mmu_notifier invalidate", kinds: ["host.notifier.start"] },
    { label: `KVM zaps the ${w.entry}`, kinds: ["kvm.notifier_zap"] },
    { label: "TLB flush", kinds: ["kvm.remote_tlb_flush"] },
    { label: "QEMU's PTE becomes a swap entry", kinds: ["host.rmap_remove", "host.unmap"] },
    { label: "invalidate end", kinds: ["host.notifier.end"] },
    { label: "written to swap", kinds: ["host.swap_out"] },
    { label: "frame freed", kinds: ["host.free"] },
  ];
}

/** One exit on a missing entry to the VM entry; a re-fault reads the page back from swap (do_swap_page()). */
export function exitLinks(w: MmuWords, chain: "refault" | "faultin"): ChainLink[] {
  return [
    { label: w.missExit, kinds: ["kvm.exit"] },
    { label: "host page fault (get_user_pages)", kinds: ["host.fault"] },
    chain === "refault"
      ? {
          label: "swap-in: slot read into a new frame",
          kinds: ["host.page_alloc", "host.refault", "host.lru_add", "host.swap_in", "host.swap_free"],
        }
      : { label: "a new zeroed frame", kinds: ["host.page_alloc", "host.lru_add", "host.zero_page", "host.cow"] },
    { label: "QEMU's PTE maps the frame", kinds: ["host.rmap_add", "host.swap_map"] },
    { label: "KVM gets the pfn", kinds: ["kvm.faultin"] },
    { label: `${w.entry} installed`, kinds: ["kvm.spte_install"] },
    { label: "the guest resumes", kinds: ["kvm.entry"] },
  ];
}

/** Exit reasons of a missing entry (EPT violation, NPF, an intercepted #PF under shadow paging). */
const FAULT_EXITS = new Set(["EPT_VIOLATION", "NPF", "EXCEPTION_NMI"]);
/** How far from an event its chain's start may lie. */
const REACH = 64;

const inRange = (e: SimEvent, hva: number) => typeof e.start === "number" && typeof e.end === "number" && e.start <= hva && hva < e.end;

/** The reclaim of the folio whose verdict is events[v]: indices of its events, from its aging walk to its frame's free. */
function reclaimMembers(evs: readonly SimEvent[], v: number): { members: number[]; page: ChainPosition["page"] } {
  const verdict = evs[v]!;
  const pfn = verdict.pfn;
  const members: number[] = [];
  let hva = -1;
  let mm = -1;
  // The aging pass just before the verdict: rmap_walk -> clear_flush_young.
  for (let j = v - 1; j >= Math.max(0, v - 3); j--) {
    const x = evs[j]!;
    if (x.kind === "host.rmap_walk" && x.pfn === pfn) {
      hva = Number(x.hva);
      mm = Number(x.mm);
      members.unshift(j);
      break;
    }
    if (x.kind === "host.notifier.clear_flush_young") members.unshift(j);
  }
  if (hva < 0) members.length = 0;
  members.push(v);
  const page: ChainPosition["page"] = { pfn: Number(pfn), ...(hva >= 0 ? { hva, mm } : {}) };
  let zapped = false;
  for (let j = v + 1; j < Math.min(evs.length, v + REACH); j++) {
    const x = evs[j]!;
    if (x.kind === "host.folio_references") break;
    const about: boolean =
      x.pfn === pfn ||
      (hva >= 0 && x.mm === mm && inRange(x, hva)) ||
      (x.kind === "kvm.notifier_zap" && hva >= 0 && inRange(x, hva)) ||
      (x.kind === "kvm.remote_tlb_flush" && zapped);
    zapped = x.kind === "kvm.notifier_zap" && about;
    if (!about) continue;
    members.push(j);
    if (x.kind === "host.rmap_walk" && hva < 0) {
      hva = Number(x.hva);
      mm = Number(x.mm);
      page.hva = hva;
      page.mm = mm;
    }
    if (x.kind === "kvm.notifier_zap" && typeof x.gfn === "number" && x.gfn >= 0) page.gpa = x.gfn * 4096;
    if (typeof x.slot === "number") page.slot = x.slot;
    if (x.kind === "host.free") break;
  }
  return { members, page };
}

/** The exit chain opened by events[x]: to the VM entry on the same vCPU. */
function exitMembers(evs: readonly SimEvent[], x: number): { members: number[]; page: ChainPosition["page"]; swapped: boolean } {
  const exit = evs[x]!;
  const members = [x];
  const page: ChainPosition["page"] = {};
  if (typeof exit.gpa === "number") page.gpa = exit.gpa - (exit.gpa % 4096);
  if (typeof exit.gva === "number") page.gva = exit.gva - (exit.gva % 4096);
  let swapped = false;
  for (let j = x + 1; j < Math.min(evs.length, x + REACH); j++) {
    const e = evs[j]!;
    if (e.kind === "kvm.exit") break;
    members.push(j);
    if (e.kind === "host.swap_in" || e.kind === "host.swap_map") swapped = true;
    if (e.kind === "kvm.faultin") {
      page.gpa = Number(e.gfn) * 4096;
      page.hva = Number(e.hva);
      page.pfn = Number(e.pfn);
    }
    if (typeof e.slot === "number" && e.kind.startsWith("host.")) page.slot = e.slot;
    if (e.kind === "host.fault" && page.hva === undefined) {
      page.hva = Number(e.hva);
      page.mm = Number(e.mm);
    }
    if (e.kind === "kvm.entry" && e.vcpu === exit.vcpu) break;
  }
  return { members, page, swapped };
}

function linkOf(links: ChainLink[], e: SimEvent, after: number): number {
  for (let k = Math.max(0, after); k < links.length; k++) if (links[k]!.kinds.includes(e.kind)) return k;
  return -1;
}

/** Assigns each member its link, in order (a kind seen again later stays on the latest link it reached). */
function position(
  evs: readonly SimEvent[],
  chain: ChainName,
  links: ChainLink[],
  members: number[],
  i: number,
  page: ChainPosition["page"],
): ChainPosition | null {
  let link = -1;
  let at = -1;
  const hit = links.map(() => false);
  for (const j of members) {
    const k = linkOf(links, evs[j]!, Math.max(0, link));
    if (k >= 0) link = k;
    if (k >= 0) hit[k] = true;
    if (j === i) at = link;
  }
  return at < 0 ? null : { chain, links, link: at, members, hit, page };
}

/** Where events[i] stands in its chain (events: consecutive events of the run), or null if it belongs to none. */
export function chainAt(evs: readonly SimEvent[], i: number, mmu = "ept"): ChainPosition | null {
  const w = mmuWords(mmu);
  const e = evs[i];
  if (!e) return null;
  // Reclaim: a verdict at or before i (or just after, for its aging walk) whose chain holds i.
  for (let v = Math.min(evs.length - 1, i + 3); v >= Math.max(0, i - REACH); v--) {
    const x = evs[v]!;
    if (x.kind !== "host.folio_references" || x.decision !== "reclaim") continue;
    const { members, page } = reclaimMembers(evs, v);
    if (members.includes(i)) return position(evs, "reclaim", reclaimLinks(w), members, i, page);
    if (v < i) break;
  }
  for (let x = i; x >= Math.max(0, i - REACH); x--) {
    const ex = evs[x]!;
    if (ex.kind !== "kvm.exit") continue;
    if (!FAULT_EXITS.has(String(ex.reason))) return null;
    const { members, page, swapped } = exitMembers(evs, x);
    if (!members.includes(i)) return null;
    const chain = swapped ? "refault" : "faultin";
    return position(evs, chain, exitLinks(w, chain), members, i, page);
  }
  return null;
}

/** The page the panels follow at events[i]: the event's own objects, completed by its chain's (the gpa of a host swap-out comes from KVM's zap). */
export function cursorPage(evs: readonly SimEvent[], i: number, mmu = "ept"): { objects: CursorObjects; chain: ChainPosition | null } {
  const e = evs[i];
  if (!e) return { objects: {}, chain: null };
  const objects = eventObjects(e, { mmu });
  const chain = chainAt(evs, i, mmu);
  if (chain) {
    const p = chain.page;
    // The chain's page wins over an event's incidental addresses (a guest.pte_write's table gpa).
    if (p.gpa !== undefined && objects.entry?.tables !== "guest") objects.gpa = p.gpa;
    if (p.hva !== undefined && objects.hva === undefined) objects.hva = p.hva;
    if (p.mm !== undefined && objects.mm === undefined) objects.mm = p.mm;
    if (p.pfn !== undefined && objects.pfn === undefined) objects.pfn = p.pfn;
    if (p.gva !== undefined && objects.gva === undefined) objects.gva = p.gva;
  }
  return { objects, chain };
}

// ---- the cursor at a story position

/** The cursor at story item `pos`: the current event's objects and chain (over the run of consecutive kept events around it) and the worker's trees for its page. */
export interface StoryCursor {
  objects: CursorObjects;
  chain: ChainPosition | null;
  /** The trees of the event's page, read right after it (or the latest earlier event's, if it names no page). */
  follow: Follow | null;
  /** The same page's trees at the previous event that read them: what the current event changed. */
  before: Follow | null;
  /** Item index of the event whose trees `follow` holds. */
  followAt: number;
  /** Item index of the event the cursor stands on (a chapter start's next event). */
  at: number;
}

/** Consecutive kept events around item `pos` (chapter items do not break a run; gaps do). */
export function eventRun(items: readonly StoryItem[], pos: number): { evs: SimEvent[]; at: number[]; i: number } {
  let from = pos;
  while (from > 0 && items[from - 1]!.t !== "gap") from--;
  let to = pos;
  while (to + 1 < items.length && items[to + 1]!.t !== "gap") to++;
  const evs: SimEvent[] = [];
  const at: number[] = [];
  let i = -1;
  for (let k = Math.max(from, pos - 2 * 64); k <= Math.min(to, pos + 64); k++) {
    const it = items[k]!;
    if (it.t !== "ev") continue;
    if (k === pos) i = evs.length;
    evs.push(it.e);
    at.push(k);
  }
  return { evs, at, i };
}

const samePage = (a: Follow, b: Follow) => a.page.gpa === b.page.gpa && a.page.hva === b.page.hva && a.page.gva === b.page.gva;

/** The cursor at `pos` (a chapter start: at the event after it), or null when there is no event there. */
export function cursorAt(items: readonly StoryItem[], pos: number, mmu = "ept"): StoryCursor | null {
  // A chapter start names the event after it: the cursor stands on that event.
  while (items[pos]?.t === "chapter") pos++;
  const it = items[pos];
  if (!it || it.t !== "ev") return null;
  const run = eventRun(items, pos);
  const { objects, chain } = cursorPage(run.evs, run.i, mmu);
  let follow: Follow | null = null;
  let followAt = -1;
  for (let k = run.i; k >= 0 && follow === null; k--) {
    const x = items[run.at[k]!];
    if (x?.t === "ev" && x.f) {
      follow = x.f;
      followAt = run.at[k]!;
    }
  }
  let before: Follow | null = null;
  if (follow !== null && followAt === pos) {
    for (let k = run.i - 1; k >= 0; k--) {
      const x = items[run.at[k]!];
      if (x?.t === "ev" && x.f && samePage(x.f, follow)) {
        before = x.f;
        break;
      }
    }
  }
  return { objects, chain, follow, before, followAt, at: pos };
}

/** A page the user chose to follow: by its gpa/hva (from the trees) or by its host frame (from the frame map). */
export type Pin = { gpa: number; hva: number } | { pfn: number };

const followHas = (f: Follow, pin: Pin) =>
  "pfn" in pin ? f.trees.host?.leaf === pin.pfn || f.trees.second?.leaf === pin.pfn : f.page.gpa === pin.gpa && f.page.hva === pin.hva;

/** The latest trees of the pinned page at or before `pos` (item index of the event that read them), or null if no kept event named it. */
export function pinnedFollow(items: readonly StoryItem[], pos: number, pin: Pin): { follow: Follow; at: number } | null {
  for (let k = Math.min(pos, items.length - 1); k >= 0; k--) {
    const it = items[k]!;
    if (it.t === "ev" && it.f && followHas(it.f, pin)) return { follow: it.f, at: k };
  }
  return null;
}
