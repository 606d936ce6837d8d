// SPDX-License-Identifier: MIT
// Turns a run's event stream (millions of events for the built-in story) into a story the
// page can play: windows of consecutive events kept whole, each opened by something new
// (the first event of a kind, or of a kind with a new outcome: a reclaim decision, an exit
// reason, an allocation purpose), by a workload step starting, or now and then in the
// steady state; between windows, gaps that only count what was skipped. A window keeps a
// few events from before its trigger too, so the first swap-out arrives with the
// mmu_notifier invalidation and the KVM zap that preceded it.

import type { SimEvent } from "../hw/events.js";
import type { EventKind, EventMap } from "../sim/sim_events.js";
import type { StoryItem, StoryTrees } from "./protocol.js";
import type { Follow } from "./story_follow.js";

export interface CollectorOptions {
  /** Most events kept in all (the rest are only counted). */
  maxEvents: number;
  /** Events kept from before a trigger. */
  lead: number;
  /** Events kept from the trigger on. */
  window: number;
  /** Events kept in the run's first window. */
  firstWindow: number;
}

export const DEFAULT_COLLECTOR: CollectorOptions = { maxEvents: 6000, lead: 12, window: 28, firstWindow: 60 };

/** The field whose value makes a kind's event new again (a first "reclaim" decision after many "activate"s). */
export const DISCRIMINATOR: { readonly [K in EventKind]?: keyof EventMap[K] & string } = {
  "kvm.exit": "reason",
  "host.folio_references": "decision",
  "host.page_alloc": "purpose",
  "host.lru_scan": "lru",
  "host.activate": "why",
  "host.notifier.start": "event",
  "host.notifier.clear_flush_young": "young",
  "host.swap_map": "major",
  "host.zero_page": "huge",
  "host.cow": "huge",
  "host.madvise": "advice",
  "sim.timeline": "advice",
};

/** Fields summed per kind, for the live panels (pages scanned, EPT entries zapped...). */
export const SUM_FIELDS: { readonly [K in EventKind]?: readonly (keyof EventMap[K] & string)[] } = {
  "host.lru_scan": ["scanned", "isolated", "reclaimed", "deactivated"],
  "kvm.notifier_zap": ["zapped"],
  "host.rmap_walk": ["reads"],
};

/** What the collector reads from the machine when a window opens. */
export interface CollectorState {
  gauges(): Record<string, number>;
  accesses(): number;
  /** A workload step's name for a sim.step event (the event's own `kind` field is the event kind). */
  stepName(e: SimEvent): string;
  /** The host frames by state, if the page shows them. */
  frames?(): { cells: Uint8Array; step: number } | null;
  /** The guest's and KVM's tables on the followed address's path, if the page shows them. */
  trees?(): StoryTrees | null;
  /** The page a kept event is about and its trees now (`late`: the event is from before the window opened). */
  follow?(e: SimEvent, late: boolean): Follow | undefined;
}

export class StoryCollector {
  /** Events seen so far. */
  seen = 0;
  /** Events kept so far. */
  kept = 0;
  private readonly counts: Record<string, number> = {};
  private readonly sums: Record<string, number> = {};
  private readonly signatures = new Map<string, Set<unknown>>();
  private ring: { n: number; e: SimEvent }[] = [];
  private remaining = 0;
  private skipped = 0;
  private skippedByKind: Record<string, number> = {};
  private armed: string | null = null;
  private out: StoryItem[] = [];
  private windows = 0;

  constructor(
    private readonly state: CollectorState,
    private readonly opts: CollectorOptions = DEFAULT_COLLECTOR,
  ) {}

  /** Asks for a window at the next event (a steady-state sample), unless one is open. */
  arm(reason: string): void {
    if (this.remaining === 0 && this.armed === null) this.armed = reason;
  }

  /** Items produced since the last call. */
  take(): StoryItem[] {
    const items = this.out;
    this.out = [];
    return items;
  }

  onEvent(e: SimEvent): void {
    const n = this.seen++;
    const trigger = this.triggerOf(e);
    if (this.remaining > 0) {
      if (trigger !== null) {
        this.chapter(n, trigger, e.kind);
        this.remaining = Math.max(this.remaining, this.opts.window);
      }
      this.keep(n, e);
      this.remaining--;
      return;
    }
    if (trigger !== null && this.kept < this.opts.maxEvents) {
      this.armed = null;
      if (this.skipped > 0) {
        this.out.push({ t: "gap", n: this.ring[0]?.n ?? n, skipped: this.skipped, byKind: this.skippedByKind });
        this.skipped = 0;
        this.skippedByKind = {};
      }
      this.chapter(this.ring[0]?.n ?? n, trigger, e.kind);
      for (const r of this.ring) this.keep(r.n, r.e, true);
      this.ring = [];
      this.keep(n, e);
      this.remaining = (this.windows++ === 0 ? this.opts.firstWindow : this.opts.window) - 1;
      return;
    }
    this.ring.push({ n, e });
    if (this.ring.length > this.opts.lead) this.drop(this.ring.shift()!.e);
  }

  /** Ends the story: the events still in the ring are counted as skipped, and a last chapter holds the final state. */
  finish(): StoryItem[] {
    for (const r of this.ring) this.drop(r.e);
    this.ring = [];
    if (this.skipped > 0) this.out.push({ t: "gap", n: this.seen, skipped: this.skipped, byKind: this.skippedByKind });
    this.skipped = 0;
    this.skippedByKind = {};
    this.out.push(this.snapshot(this.seen, "end of the run", ""));
    return this.take();
  }

  /** Why `e` opens a window, or null. Records its signature as seen. */
  private triggerOf(e: SimEvent): string | null {
    if (e.kind === "sim.step") return this.state.stepName(e);
    // Per kind, the discriminator values seen (no string built per event: this runs millions of times).
    let seen = this.signatures.get(e.kind);
    if (seen === undefined) {
      seen = new Set();
      this.signatures.set(e.kind, seen);
    }
    const field = DISCRIMINATOR[e.kind as EventKind];
    const value = field === undefined ? undefined : e[field];
    if (!seen.has(value)) {
      seen.add(value);
      return value === undefined ? `first ${e.kind}` : `first ${e.kind} (${field} ${value})`;
    }
    if (this.armed !== null) return this.armed;
    return null;
  }

  private chapter(n: number, reason: string, kind: string): void {
    this.out.push(this.snapshot(n, reason, kind));
  }

  private snapshot(n: number, reason: string, kind: string): StoryItem {
    const f = this.state.frames?.() ?? null;
    const trees = this.state.trees?.() ?? null;
    return {
      t: "chapter",
      n,
      reason,
      kind,
      counts: { ...this.counts },
      sums: { ...this.sums },
      gauges: this.state.gauges(),
      accesses: this.state.accesses(),
      ...(f ? { frames: f.cells, frameStep: f.step } : {}),
      ...(trees ? { trees } : {}),
    };
  }

  private count(e: SimEvent): void {
    addEvent(this.counts, this.sums, e);
  }

  private keep(n: number, e: SimEvent, late = false): void {
    this.count(e);
    this.kept++;
    const f = this.state.follow?.(e, late);
    this.out.push(f ? { t: "ev", n, e, f } : { t: "ev", n, e });
  }

  private drop(e: SimEvent): void {
    this.count(e);
    this.skipped++;
    this.skippedByKind[e.kind] = (this.skippedByKind[e.kind] ?? 0) + 1;
  }
}

/** Adds one event to running counts and sums (the page replays a window's events onto its chapter's snapshot). */
export function addEvent(counts: Record<string, number>, sums: Record<string, number>, e: SimEvent): void {
  counts[e.kind] = (counts[e.kind] ?? 0) + 1;
  const fields = SUM_FIELDS[e.kind as EventKind];
  if (fields) {
    const keys = SUM_KEYS[e.kind]!;
    for (let i = 0; i < fields.length; i++) {
      const v = e[fields[i]!];
      if (typeof v === "number") sums[keys[i]!] = (sums[keys[i]!] ?? 0) + v;
    }
  }
}

/** The sums' keys ("host.lru_scan.scanned"), built once. */
const SUM_KEYS: Record<string, string[]> = Object.fromEntries(
  Object.entries(SUM_FIELDS).map(([kind, fields]) => [kind, (fields as readonly string[]).map((f) => `${kind}.${f}`)]),
);
