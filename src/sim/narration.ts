// SPDX-License-Identifier: MIT
// The story's narration: each event kind in plain words, the kernel function it stands for,
// the SEED-PATHS path it belongs to, and, where the common telling is loose or dated, the
// correction (shared/design/SEED-PATHS.md, "Corrections"). Every kind takes its sentence and
// function from the declaration of the layer that emits it.

import { tableIndex } from "../hw/addr.js";
import type { EventDecls, EventKindDesc, SimEvent } from "../hw/events.js";
import { EVENT_KINDS, type EventKind } from "./sim_events.js";
import { hexAddr, int } from "./text_format.js";
import { mmuWords } from "./mmu_words.js";

export type Stage = "setup" | "fault-in" | "guest" | "shadow" | "aging" | "eviction" | "swap-in" | "migration" | "other";

export const STAGE_TITLES: Record<Stage, string> = {
  setup: "Lazy allocation (path 1)",
  "fault-in": "Fault-in (path 4)",
  guest: "Guest kernel (path 3)",
  shadow: "Shadow paging (path 2)",
  aging: "Reclaim: aging (path 5, steps 1-3)",
  eviction: "Reclaim: eviction (path 5, steps 4-6)",
  "swap-in": "Swap-in (path 5 step 7, path 6)",
  migration: "Dirty logging and live migration",
  other: "Other",
};

/** The guest-never-hears correction in the words of the MMU in use. */
export function guestNeverHears(mmu: string): string {
  const w = mmuWords(mmu);
  return mmu === "shadow"
    ? "The guest never hears about the invalidation: KVM, on the host side, drops its shadow PTEs for the page. The guest sees only a slower access later (a page-fault exit, then a swap-in)."
    : `The guest never hears about the invalidation: KVM, on the host side, drops its ${w.entries}. The guest sees only a slower access later (an ${w.missExit}, then a swap-in).`;
}

/** The "25 references" correction for the nested MMU in use (it attaches only to EPT and NPT). */
export function twentyFive(mmu: string): string {
  return CORRECTIONS.twentyFive.replace("4-level EPT tables", `4-level ${mmuWords(mmu).tables} tables`);
}

/** The corrections of SEED-PATHS.md, by the kind they attach to. */
export const CORRECTIONS = {
  notifier:
    "The overview's invalidate_page() was folded into invalidate_range_start()/end() in Linux 4.13, and change_pte() (a notifier for replacing a PTE in place, for KSM merging and copy-on-write) was removed in Linux 6.10 (2024). A modern kernel has only the range start/end pair, and KVM drops its entries in start.",
  guestNeverHears:
    "The guest never hears about the invalidation: KVM, on the host side, drops its EPT/NPT entries. The guest sees only a slower access later (an EPT violation, then a swap-in).",
  noNotifierOnFaultIn:
    "On first touch no notifier is involved: the host fault happens inside KVM's own fault handling (gpa -> memslot -> hva -> get_user_pages), and KVM installs the entry itself.",
  twentyFive:
    '"The host may touch memory 25 times" is 24 table reads plus the data read, for 4-level guest and 4-level EPT tables (n*m + n + m table reads); 5-level paging on both sides makes it 35, 36 with the data. The TLB and paging-structure caches hide most of it.',
} as const;

/** A kind's declaration, from the layer that emits it. */
export function kindDesc(kind: string): EventKindDesc {
  const d = (EVENT_KINDS as EventDecls)[kind];
  return d ? { kind, ...d } : { kind, description: "An event of the model.", mirrors: "", fields: {} };
}

const STAGES: { readonly [K in EventKind]?: Stage } = {
  "host.process": "setup",
  "host.mmap": "setup",
  "sim.step": "setup",
  "kvm.exit": "fault-in",
  "host.fault": "fault-in",
  "host.page_alloc": "fault-in",
  "host.rmap_add": "fault-in",
  "host.lru_add": "fault-in",
  "host.zero_page": "fault-in",
  "host.cow": "fault-in",
  "host.wp_reuse": "fault-in",
  "kvm.faultin": "fault-in",
  "kvm.fault_retry": "fault-in",
  "kvm.spte_install": "fault-in",
  "kvm.entry": "fault-in",
  "kvm.fast_fault": "fault-in",
  "guest.pgfault": "guest",
  "guest.pte_write": "guest",
  "guest.cr3_load": "guest",
  "guest.invlpg": "guest",
  "guest.tlb_flush": "guest",
  "guest.process_create": "guest",
  "guest.process_exit": "guest",
  "kvm.sp_alloc": "shadow",
  "kvm.sp_zap": "shadow",
  "kvm.inject_pf": "shadow",
  "kvm.root_load": "shadow",
  "kvm.unsync": "shadow",
  "kvm.sync_page": "shadow",
  "kvm.write_flooding": "shadow",
  "kvm.pte_write": "shadow",
  "host.kswapd_wake": "aging",
  "host.kswapd_sleep": "aging",
  "host.direct_reclaim": "aging",
  "host.lru_scan": "aging",
  "host.rmap_walk": "aging",
  "host.notifier.clear_flush_young": "aging",
  "host.folio_references": "aging",
  "host.activate": "aging",
  "host.swap_alloc": "eviction",
  "host.notifier.start": "eviction",
  "kvm.notifier_zap": "eviction",
  "kvm.remote_tlb_flush": "eviction",
  "host.rmap_remove": "eviction",
  "host.unmap": "eviction",
  "host.notifier.end": "eviction",
  "host.swap_out": "eviction",
  "host.free": "eviction",
  "host.swap_in": "swap-in",
  "host.swap_map": "swap-in",
  "host.refault": "swap-in",
  "host.swap_free": "swap-in",
  "kvm.dirty_log": "migration",
  "kvm.huge_split": "migration",
  "host.userfault": "migration",
  "host.uffd_place": "migration",
};

export function stageOf(kind: string): Stage {
  return STAGES[kind as EventKind] ?? "other";
}

export interface Narration {
  kind: string;
  stage: Stage;
  /** This event, in plain words. */
  text: string;
  /** The kernel function (or hardware step) it stands for. */
  mirrors: string;
  /** A correction to the common telling, where one applies. */
  correction?: string;
}

/** What the narration needs to know about the run: EPT or NPT names. */
export interface NarrationContext {
  mmu: string;
  /** Paging levels of the guest's tables and of EPT/NPT (4 or 5; default 4). */
  levels?: number;
}

const n = (v: unknown) => (typeof v === "number" ? int(v) : String(v));
const h = (v: unknown) => (typeof v === "number" ? hexAddr(v) : String(v));

/** The narration of one event. */
export function narrate(e: SimEvent, ctx: NarrationContext = { mmu: "ept" }): Narration {
  const d = kindDesc(e.kind);
  const shadow = ctx.mmu === "shadow";
  const words = mmuWords(ctx.mmu);
  const tables = words.tables;
  let text = d.description;
  let mirrors = d.mirrors;
  let correction: string | undefined;
  switch (e.kind) {
    case "host.process":
      text = `The host creates process ${e.name} (mm ${e.mm}) with its top-level page table: QEMU, whose address space will hold guest RAM.`;
      break;
    case "host.mmap":
      text = `QEMU reserves ${n(Number(e.len) / 2 ** 20)} MiB of anonymous memory at hva ${h(e.hva)} for guest RAM: address space only, no page is backed yet.`;
      break;
    case "sim.step":
      text = `The guest process ${e.process} starts step ${e.step} of its workload.`;
      break;
    case "kvm.exit":
      if (e.reason === "EPT_VIOLATION" || e.reason === "NPF") {
        text = `${e.reason === "NPF" ? "NPF" : "EPT violation"}: the hardware's nested walk found no ${tables} entry for gpa ${h(e.gpa)}, so vCPU ${e.vcpu} exits to KVM.`;
        mirrors = mmuWords(e.reason === "NPF" ? "npt" : "ept").faultPath;
        correction = twentyFive(e.reason === "NPF" ? "npt" : "ept");
      } else if (e.reason === "EXCEPTION_NMI") {
        text = `A page fault in the guest exits to KVM (vCPU ${e.vcpu}): under shadow paging the hardware walked KVM's shadow tables, so KVM must look at the guest's own tables to know whose fault it is.`;
        mirrors = mmuWords("shadow").faultPath;
      } else if (e.reason === "CR_ACCESS") {
        text = `The guest loads CR3 and, under shadow paging, that exits (vCPU ${e.vcpu}): KVM must switch shadow roots (path 2.4).`;
        mirrors = "handle_cr() -> kvm_set_cr3()";
      } else if (e.reason === "INVLPG") {
        text = `The guest invalidates a TLB entry; under shadow paging INVLPG exits so KVM can drop the shadow entry too.`;
        mirrors = "handle_invlpg() -> kvm_mmu_invlpg()";
      } else if (e.reason === "EXTERNAL_INTERRUPT") {
        text = `vCPU ${e.vcpu} was in guest mode when another CPU asked every vCPU to flush its TLB: the IPI forces an exit, and the pending KVM_REQ_TLB_FLUSH is serviced before it re-enters.`;
        mirrors = "kvm_flush_remote_tlbs() -> kvm_make_all_cpus_request() -> handle_external_interrupt()";
      } else if (e.reason === "IO_INSTRUCTION") {
        text = `The guest code syncs with the VMM (a selftest ucall): an I/O exit to userspace that touches nothing in the MMU.`;
        mirrors = "handle_io() -> KVM_EXIT_IO";
      } else text = `vCPU ${e.vcpu} exits to KVM: ${e.reason}.`;
      break;
    case "host.fault":
      text = `A page fault enters the host mm for QEMU's mm ${e.mm} at hva ${h(e.hva)} (${e.write === 1 ? "write" : "read"}): called from KVM's get_user_pages after an exit, not from a CPU fault in QEMU (unless QEMU preallocates guest RAM).`;
      break;
    case "host.page_alloc":
      text = `The buddy allocator hands out frame ${h(e.pfn)} (${e.purpose}${Number(e.order) > 0 ? `, order ${e.order}` : ""}); ${n(e.free)} pages stay free.`;
      break;
    case "host.rmap_add":
      text = `The reverse map records that frame ${h(e.pfn)} is mapped by mm ${e.mm} at hva ${h(e.hva)}: reclaim will need it to find the PTE.`;
      break;
    case "host.lru_add":
      text = `Frame ${h(e.pfn)} joins the ${String(e.lru).replace("_", " ")} LRU list, at its head.`;
      break;
    case "host.zero_page":
      text = `A read of untouched memory at hva ${h(e.hva)} maps the shared zero page read-only: no new page, no RSS.`;
      break;
    case "kvm.faultin":
      text = `KVM looks up the memslot: gfn ${h(e.gfn)} is QEMU's hva ${h(e.hva)}, now backed by host frame ${h(e.pfn)}${e.writable === 1 ? ", writable" : ""}.`;
      // Under shadow paging the gfn comes from FNAME(walk_addr) over the guest's own tables first.
      if (shadow) mirrors = `FNAME(page_fault) -> FNAME(walk_addr) -> ${d.mirrors}`;
      correction = CORRECTIONS.noNotifierOnFaultIn;
      break;
    case "kvm.spte_install":
      text = `KVM installs the ${words.entry}: ${shadow ? `the guest's PTE names gfn ${h(e.gfn)}, so the shadow leaf maps the gva straight to` : `gfn ${h(e.gfn)} ->`} host frame ${h(e.pfn)} (${Number(e.level) === 1 ? "4 KiB" : Number(e.level) === 2 ? "2 MiB" : "1 GiB"} leaf).`;
      mirrors = words.installPath;
      break;
    case "kvm.entry":
      text = `VM entry: vCPU ${e.vcpu} resumes the guest, whose access now completes; the next accesses to the page hit.`;
      break;
    case "kvm.fault_retry":
      text = `An invalidation raced this fault on gfn ${h(e.gfn)}: the sequence count changed between the read and the install, so KVM installs nothing and the guest faults again.`;
      break;
    case "guest.pgfault":
      text = shadow
        ? `The guest kernel handles a page fault at gva ${h(e.gva)} (pid ${e.pid}) that KVM reflected into it; it allocates a frame and writes its PTE, and that write to a write-protected table exits again.`
        : `The guest kernel handles its own page fault at gva ${h(e.gva)} (pid ${e.pid}): under ${tables} this needs no exit; the guest allocates a frame and writes its PTE.`;
      break;
    case "guest.pte_write":
      text = shadow
        ? `The guest writes a level-${e.level} page-table entry at gpa ${h(e.gpa)}: the table is write-protected (or unsync) for KVM, which must mirror the change into its shadow tables (path 2.3).`
        : `The guest writes a level-${e.level} page-table entry into its own RAM at gpa ${h(e.gpa)}: no exit, the hardware will walk it (path 3.3).`;
      break;
    case "guest.cr3_load":
      text = shadow
        ? `The guest loads CR3 on CPU ${e.cpu} (pid ${e.pid}, root gfn ${h(e.gfn)}): under shadow paging this exits, and KVM switches shadow roots (path 2.4).`
        : `The guest loads CR3 on CPU ${e.cpu} (pid ${e.pid}, root gfn ${h(e.gfn)}): under ${tables}, no exit.`;
      break;
    case "host.kswapd_wake":
      text = `Free memory (${n(e.free)} pages) fell below the low watermark (${n(e.low)}): kswapd wakes to reclaim up to the high watermark (${n(e.high)}).`;
      break;
    case "host.kswapd_sleep":
      text = `Free memory (${n(e.free)} pages) is back above the high watermark (${n(e.high)}): kswapd sleeps.`;
      break;
    case "host.direct_reclaim":
      text = `Free memory (${n(e.free)} pages) fell below the min watermark (${n(e.min)}): the faulting task reclaims pages itself before it can allocate.`;
      break;
    case "host.lru_scan":
      text = `${e.by === "kswapd" ? "kswapd" : "Direct reclaim"} scans the tail of the ${String(e.lru).replace("_", " ")} list: ${n(e.scanned)} scanned${e.reclaimed !== undefined ? `, ${n(e.reclaimed)} reclaimed` : ""}${e.deactivated !== undefined ? `, ${n(e.deactivated)} moved to the inactive list` : ""}.`;
      break;
    case "host.rmap_walk":
      text = `Reclaim follows the reverse map from frame ${h(e.pfn)} to QEMU's mm ${e.mm} and walks its page table to the PTE at hva ${h(e.hva)} (${e.reads} table reads).`;
      break;
    case "host.notifier.clear_flush_young":
      text = `Aging asks KVM, through the mmu_notifier, whether the guest used hva ${h(e.start)}: KVM tests and clears the ${tables} accessed bit: ${e.young === 1 ? "young, the guest used it" : "old, not used since the last look"}.`;
      correction = `Guest accesses set the accessed bit in the ${words.entry}, not in QEMU's PTE, so without asking the secondary MMU reclaim would take every guest page for idle.`;
      break;
    case "host.folio_references":
      text = `Reclaim's verdict on frame ${h(e.pfn)}: ${e.decision === "reclaim" ? "reclaim it (nobody used it lately)" : e.decision === "activate" ? "keep it: it was used, so it moves to the active list" : String(e.decision)}.`;
      break;
    case "host.activate":
      text = `Frame ${h(e.pfn)} moves to the active list (${e.why === "reclaim" ? "found young by reclaim" : String(e.why)}).`;
      break;
    case "host.swap_alloc":
      text = `Frame ${h(e.pfn)} gets swap slot ${e.slot} and enters the swap cache (${n(e.free)} slots left).`;
      break;
    case "host.notifier.start":
      text = `mmu_notifier: before touching QEMU's PTE, the host tells KVM that hva ${h(e.start)}-${h(e.end)} is about to change (${e.event}).`;
      correction = CORRECTIONS.notifier;
      break;
    case "kvm.notifier_zap":
      text = `KVM drops its ${tables} entries for hva ${h(e.start)}-${h(e.end)} (${n(e.zapped)} zapped), on the host side.`;
      correction = guestNeverHears(ctx.mmu);
      break;
    case "kvm.remote_tlb_flush":
      text = `KVM flushes the TLBs of the VM's vCPUs${e.ipi === 1 ? " (an IPI: a vCPU was in guest mode)" : " (no IPI needed: no vCPU was in guest mode; it flushes at its next entry)"}.`;
      break;
    case "host.rmap_remove":
      text = `The reverse-map entry of frame ${h(e.pfn)} at hva ${h(e.hva)} is removed.`;
      break;
    case "host.unmap":
      text = `QEMU's PTE at hva ${h(e.hva)} is cleared and replaced by a swap entry (slot ${e.slot}).`;
      break;
    case "host.notifier.end":
      text = `mmu_notifier: the change of hva ${h(e.start)}-${h(e.end)} is done; KVM may map the range again.`;
      break;
    case "host.swap_out":
      text = `The page of frame ${h(e.pfn)} (QEMU's hva ${h(e.hva)}) is written to swap slot ${e.slot}.`;
      break;
    case "host.free":
      text = `Frame ${h(e.pfn)} goes back to the buddy allocator (${n(e.free)} pages free).`;
      break;
    case "host.swap_in":
      text = `Swap slot ${e.slot} is read back into frame ${h(e.pfn)}: a major fault. The guest will read exactly what it wrote (the model checks every read).`;
      break;
    case "host.swap_map":
      text = `QEMU's PTE at hva ${h(e.hva)} maps frame ${h(e.pfn)} again (${e.major === 1 ? "read from swap" : "found in the swap cache"}).`;
      break;
    case "host.refault":
      text = `Frame ${h(e.pfn)} is a refault: evicted ${n(e.distance)} evictions ago against a workingset of ${n(e.workingsetSize)}${e.activate === 1 ? ", so it goes straight to the active list" : ""}.`;
      break;
    case "host.swap_free":
      text = `Swap slot ${e.slot} is free again (${n(e.free)} free).`;
      break;
    case "kvm.dirty_log":
      text =
        e.op === "start"
          ? `Dirty logging starts on memslot ${e.slot} of ${e.vm}: KVM write-protects every leaf (with PML, clears its D bit) and flushes the TLBs, so the next write to each page faults (or is logged) once.`
          : e.op === "stop"
            ? `Dirty logging stops on memslot ${e.slot} of ${e.vm}: the bitmap is freed and huge pages can be mapped again.`
            : e.op === "get"
              ? `The VMM harvests memslot ${e.slot}'s dirty log: ${n(e.pages)} pages were written since the last harvest, and KVM write-protects them again (without manual protect).`
              : e.op === "clear"
                ? `KVM_CLEAR_DIRTY_LOG: ${n(e.pages)} pages of memslot ${e.slot} are re-protected, so their next write is seen again.`
                : `KVM_RESET_DIRTY_RINGS: ${n(e.pages)} harvested ring entries are re-protected.`;
      break;
    case "kvm.huge_split":
      text = `A huge ${tables} leaf at gfn ${h(e.gfn)} (level ${e.level}) becomes a table of 512 smaller leaves mapping the same frames, so dirty pages are tracked at 4 KiB.`;
      break;
    case "host.wp_reuse":
      text = `A write to the read-only mapping of an exclusive page (frame ${h(e.pfn)}, back from swap) makes it writable in place.`;
      break;
  }
  return { kind: e.kind, stage: stageOf(e.kind), text, mirrors, ...(correction ? { correction } : {}) };
}

const CHAPTER_WORDS: { readonly [K in EventKind]?: string } = {
  "host.process": "the host creates QEMU's process",
  "kvm.dirty_log": "dirty logging on a memslot",
  "kvm.huge_split": "a huge leaf split for dirty logging",
  "host.mmap": "QEMU reserves guest RAM",
  "host.page_alloc": "the buddy allocator hands out a page",
  "kvm.exit": "a VM exit",
  "host.fault": "a host page fault, inside KVM",
  "host.rmap_add": "the reverse map records the page",
  "host.lru_add": "the page joins the LRU",
  "kvm.faultin": "KVM gets the host page",
  "kvm.spte_install": "KVM installs its entry",
  "kvm.entry": "VM entry: the guest resumes",
  "guest.cr3_load": "the guest loads CR3",
  "guest.process_create": "the guest creates a process",
  "guest.pte_write": "the guest writes its own page table",
  "guest.pgfault": "the guest handles its own page fault",
  "host.kswapd_wake": "kswapd wakes",
  "host.kswapd_sleep": "kswapd sleeps",
  "host.direct_reclaim": "direct reclaim",
  "host.lru_scan": "reclaim scans an LRU list",
  "host.rmap_walk": "reclaim walks the reverse map",
  "host.notifier.clear_flush_young": "aging asks KVM for the accessed bit",
  "host.folio_references": "reclaim's verdict on a page",
  "host.activate": "a page moves to the active list",
  "host.swap_alloc": "a page is picked for swap",
  "host.notifier.start": "the mmu_notifier invalidation starts",
  "kvm.notifier_zap": "KVM zaps its entry",
  "kvm.remote_tlb_flush": "KVM flushes the vCPUs' TLBs",
  "host.rmap_remove": "the reverse-map entry goes",
  "host.unmap": "QEMU's PTE becomes a swap entry",
  "host.notifier.end": "the invalidation ends",
  "host.swap_out": "the page is written to swap",
  "host.free": "the frame is freed",
  "host.swap_in": "a page comes back from swap",
  "host.swap_map": "QEMU's PTE maps the page again",
  "host.swap_free": "a swap slot is freed",
  "kvm.fault_retry": "a fault races an invalidation and retries",
  "host.refault": "a refault of an evicted page",
  "host.wp_reuse": "a write makes a swapped-in page writable",
  "host.zero_page": "a read maps the zero page",
  "host.cow": "copy-on-write replaces the zero page",
};

/** A window's outcome in plain words, by the field and value its reason names ("purpose anon"). */
const OUTCOME_WORDS: Record<string, string> = {
  "purpose pgtable": "for a page table",
  "purpose kvm-mmu": "for KVM's own tables",
  "purpose anon": "for guest memory",
  "purpose swapin": "to read a page back from swap",
  "reason EXTERNAL_INTERRUPT": "for an interrupt: another CPU asks for a TLB flush",
  "reason CR_ACCESS": "as the guest loads CR3",
  "reason INVLPG": "as the guest invalidates a TLB entry",
  "reason EXCEPTION_NMI": "for a page fault in the guest",
  "reason IO_INSTRUCTION": "for an I/O instruction",
  "young 1": "found young: the guest used the page",
  "young 0": "found old: not used since the last look",
  "decision activate": "keep it active",
  "decision reclaim": "reclaim it",
  "decision keep": "keep it where it is",
  "lru inactive_anon": "the inactive list",
  "lru active_anon": "the active list",
  "why reclaim": "found young by reclaim",
  "why mark_accessed": "accessed twice",
  "event clear": "the page is being unmapped",
  "major 1": "read from swap",
  "major 0": "found in the swap cache",
};

/**
 * A title for a story window, in plain words, never an event kind's name: "The page is written
 * to swap (first time)"; workload steps and samples keep their own words.
 */
export function chapterTitle(reason: string, kind: string, mmu = "ept"): string {
  if (!reason.startsWith("first ")) return reason;
  const m = mmuWords(mmu);
  const detail = /\((\w+ [\w-]+)\)$/.exec(reason)?.[1] ?? "";
  const nested = kind === "kvm.exit" && (detail === "" || detail === "reason EPT_VIOLATION" || detail === "reason NPF");
  const w =
    nested && mmu !== "shadow"
      ? `a VM exit: an ${m.missExit}`
      : kind === "kvm.spte_install"
        ? `KVM installs the ${m.entry}`
        : kind === "host.notifier.clear_flush_young"
          ? `aging asks KVM for the ${m.tables} accessed bit`
          : (CHAPTER_WORDS[kind as EventKind] ?? kindDesc(kind).description.replace(/[.:].*$/s, ""));
  const extra = nested ? "" : (OUTCOME_WORDS[detail] ?? (detail ? detail.replace(/_/g, " ") : ""));
  const text = `${w}${extra ? ` (${extra})` : ""}, for the first time`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Table indices an address selects, top level first (bits 47:39, 38:30, 29:21, 20:12 for 4 levels). */
export function tableIndices(addr: number, levels: number): number[] {
  const out: number[] = [];
  for (let l = levels; l >= 1; l--) out.push(tableIndex(addr, l));
  return out;
}

/** Where an event's address sits in the tables that map it: "EPT PML4E[0] > PDPTE[0] > PDE[0] > PTE[259]". */
export function tablePath(e: SimEvent, ctx: NarrationContext = { mmu: "ept" }): string | null {
  const levels = ctx.levels === 5 ? 5 : 4;
  const names = ["PML5E", "PML4E", "PDPTE", "PDE", "PTE"].slice(5 - levels);
  // QEMU's own tables on the host: 4 levels here (the host does not use LA57).
  const hostNames = ["PGD", "PUD", "PMD", "PTE"];
  const fmt = (label: string, n: string[], addr: number) =>
    `${label}: ${tableIndices(addr, n.length)
      .map((ix, i) => `${n[i]}[${ix}]`)
      .join(" > ")}`;
  const nested = ctx.mmu === "npt" ? "NPT" : ctx.mmu === "shadow" ? "" : "EPT";
  switch (e.kind) {
    case "kvm.exit":
      return nested && typeof e.gpa === "number" && e.reason !== "EXCEPTION_NMI"
        ? fmt(`${nested} entries for gpa ${hexAddr(e.gpa)}`, names, e.gpa)
        : null;
    case "kvm.faultin":
    case "kvm.spte_install":
      return nested && typeof e.gfn === "number" ? fmt(`${nested} entries for gfn ${hexAddr(e.gfn)}`, names, e.gfn * 4096) : null;
    case "guest.pgfault":
    case "guest.pte_write":
      return typeof e.gva === "number" ? fmt(`guest tables for gva ${hexAddr(e.gva)}`, names, e.gva) : null;
    case "host.fault":
    case "host.unmap":
    case "host.rmap_walk":
    case "host.swap_map":
      return typeof e.hva === "number" ? fmt(`QEMU's host tables for hva ${hexAddr(e.hva)}`, hostNames, e.hva) : null;
    default:
      return null;
  }
}
