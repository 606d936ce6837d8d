// SPDX-License-Identifier: MIT
// Picks the two chains the seed is about out of a run's event stream (SEED-PATHS.md paths 4
// and 5-6): the first fault-in (a VM exit on a missing EPT/NPT entry to the VM entry that
// resumes the guest) and the first reclaim-and-re-fault (one page's eviction, from its aging
// verdict to its frame being freed, then the exit whose host fault reads it back from swap).
// One pass keeps the evictions of the first pages reclaimed; when the first re-fault is of a
// page evicted later, the caller runs again with that page as the target (runs are
// deterministic).

import type { SimEvent } from "../hw/events.js";

/** Exit reasons that are MMU faults: the hardware found no usable entry. */
const FAULT_EXITS = new Set(["EPT_VIOLATION", "NPF", "EXCEPTION_NMI"]);

/** Evictions kept while the first re-fault is not yet known. */
const EVICTIONS_KEPT = 256;

/** Events kept from before a reclaim verdict (its rmap walk and the accessed-bit query). */
const LOOKBACK = 8;

/** A page of QEMU's address space: its mm and host virtual address. */
export interface PageKey {
  mm: number;
  hva: number;
}

export interface Chains {
  /** The first fault-in: kvm.exit ... kvm.entry. */
  faultIn: SimEvent[] | null;
  /** The reclaim that evicted the page the first re-fault reads back, from what woke reclaim to host.free. */
  eviction: SimEvent[] | null;
  /** The first re-fault: the exit whose host fault swaps the page back in, to kvm.entry. */
  refault: SimEvent[] | null;
  /** Set when the eviction was not kept: run again with this target. */
  rerunFor: PageKey | null;
}

const key = (mm: unknown, hva: unknown) => `${mm}:${hva}`;

function inRange(e: SimEvent, hva: number): boolean {
  return typeof e.start === "number" && typeof e.end === "number" && e.start <= hva && hva < e.end;
}

export class ChainCollector {
  private exitChain: SimEvent[] | null = null;
  private faultIn: SimEvent[] | null = null;
  private refault: SimEvent[] | null = null;
  private readonly ring: SimEvent[] = [];
  private wake: SimEvent | null = null;
  /** The eviction being followed: its frame, page and events. */
  private open: { pfn: number; page: PageKey; events: SimEvent[]; zapped: boolean } | null = null;
  private readonly evictions = new Map<string, SimEvent[]>();
  private kept = 0;

  /** `target`: the page whose eviction to keep (a second pass); without one, the first pages evicted. */
  constructor(private readonly target: PageKey | null = null) {}

  get done(): boolean {
    return this.faultIn !== null && this.refault !== null && this.open === null;
  }

  onEvent(e: SimEvent): void {
    if (this.open !== null) this.follow(e);
    else if (e.kind === "host.kswapd_wake" || e.kind === "host.direct_reclaim") this.wake = e;
    else if (e.kind === "host.folio_references" && e.decision === "reclaim") this.startEviction(e);
    this.ring.push(e);
    if (this.ring.length > LOOKBACK) this.ring.shift();
    this.exit(e);
  }

  /** The exit chains: the first that completes is the fault-in, the first that swaps in is the re-fault. */
  private exit(e: SimEvent): void {
    if (e.kind === "kvm.exit" && FAULT_EXITS.has(String(e.reason))) {
      this.exitChain = [e];
      return;
    }
    if (this.exitChain === null) return;
    this.exitChain.push(e);
    if (e.kind !== "kvm.entry" || e.vcpu !== this.exitChain[0]!.vcpu) return;
    const chain = this.exitChain;
    this.exitChain = null;
    if (this.faultIn === null && chain.some((x) => x.kind === "kvm.spte_install")) this.faultIn = chain;
    else if (this.refault === null && chain.some((x) => x.kind === "host.swap_in")) this.refault = chain;
  }

  private startEviction(e: SimEvent): void {
    const walk = [...this.ring].reverse().find((x) => x.kind === "host.rmap_walk" && x.pfn === e.pfn);
    if (walk === undefined) return;
    const page = { mm: Number(walk.mm), hva: Number(walk.hva) };
    const wanted = this.target === null ? this.kept < EVICTIONS_KEPT : this.target.mm === page.mm && this.target.hva === page.hva;
    if (!wanted || this.refault !== null) return;
    const before = this.ring.filter((x) => x.pfn === e.pfn || (x.mm === page.mm && inRange(x, page.hva)));
    this.open = { pfn: Number(e.pfn), page, events: [...(this.wake ? [this.wake] : []), ...before, e], zapped: false };
  }

  /** Keeps the events about the page being evicted, until its frame is freed. */
  private follow(e: SimEvent): void {
    const o = this.open!;
    const about =
      e.pfn === o.pfn ||
      (e.mm === o.page.mm && inRange(e, o.page.hva)) ||
      (e.kind === "kvm.notifier_zap" && inRange(e, o.page.hva)) ||
      (e.kind === "kvm.remote_tlb_flush" && o.zapped);
    o.zapped = e.kind === "kvm.notifier_zap" && about;
    if (about) o.events.push(e);
    if (e.kind === "host.free" && e.pfn === o.pfn) {
      this.evictions.set(key(o.page.mm, o.page.hva), o.events);
      this.kept++;
      this.open = null;
    }
  }

  /** The chains found; `rerunFor` names the page to follow in a second pass if its eviction was not kept. */
  result(): Chains {
    const swapMap = this.refault?.find((x) => x.kind === "host.swap_map") ?? null;
    const page = swapMap === null ? null : { mm: Number(swapMap.mm), hva: Number(swapMap.hva) };
    const eviction = page === null ? null : (this.evictions.get(key(page.mm, page.hva)) ?? null);
    return {
      faultIn: this.faultIn,
      eviction,
      refault: this.refault,
      rerunFor: page !== null && eviction === null && this.target === null ? page : null,
    };
  }
}
