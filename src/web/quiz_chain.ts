// SPDX-License-Identifier: MIT
// The fault-in quiz: the first fault-in of the quiz's run (quiz_run.ts: a VM exit, every
// event up to the VM entry), consecutive events of one kind and purpose made one step.
// Each question shows the steps so far and asks for the next; the answer is the run's.

import type { EventDecls, SimEvent } from "../hw/events.js";
import { EVENT_KINDS } from "../sim/sim_events.js";
import { mmuWords } from "./mmu_words.js";

export interface ChainStep {
  /** What the choices call it: the kind, and the purpose of an allocation ("host.page_alloc (pgtable)"). */
  key: string;
  /** Plain words ("EPT entry installed"), right for the MMU in use. */
  words: string;
  /** Events folded into the step. */
  count: number;
  /** The first event's fields, e.g. "reason EPT_VIOLATION, gpa 0x100000". */
  detail: string;
  /** Why this step comes here, in one clause (the event kind's declared sentence if nothing more specific). */
  reason: string;
  /** The event kind's declared sentence and kernel function. */
  description: string;
  mirrors: string;
}

function stepKey(e: SimEvent): string {
  return e.kind === "host.page_alloc" ? `${e.kind} (${String(e.purpose)})` : e.kind;
}

function plainWords(e: SimEvent, mmu: string): string {
  const w = mmuWords(mmu);
  switch (e.kind) {
    case "kvm.exit":
      return `VM exit (${String(e.reason)})`;
    case "host.fault":
      return "host page fault on QEMU's memory";
    case "host.page_alloc":
      return e.purpose === "anon"
        ? "host page allocated for the data"
        : e.purpose === "pgtable"
          ? "host page allocated for a host page table"
          : e.purpose === "kvm-mmu"
            ? `host page allocated for KVM's ${w.tables} tables`
            : `host page allocated (${String(e.purpose)})`;
    case "host.rmap_add":
      return "reverse map records the mapping";
    case "host.lru_add":
      return "page put on the LRU";
    case "kvm.faultin":
      return "KVM gets the host page (gfn -> hva -> pfn)";
    case "kvm.sp_alloc":
      return "KVM allocates a shadow page";
    case "kvm.spte_install":
      return `${w.entry} installed`;
    case "kvm.entry":
      return "VM entry: the guest resumes";
    default:
      return e.kind;
  }
}

/** Why a step of a fault-in happens where it does (the order itself is the run's). */
function reasonFor(e: SimEvent, mmu: string, description: string): string {
  const w = mmuWords(mmu);
  switch (e.kind) {
    case "kvm.exit":
      return `the guest's access found no ${w.entry} for its address, so the CPU leaves the guest with ${w.missExit} (${w.faultPath})`;
    case "host.fault":
      return "KVM asks the host mm for the page behind QEMU's hva (hva_to_pfn() -> get_user_pages()) and QEMU's page table has nothing there yet, so the host faults it in (handle_mm_fault())";
    case "host.page_alloc":
      if (e.purpose === "pgtable")
        return "QEMU's page tables have no table on this hva's path yet: the host fault allocates them before it can map the page (__pud_alloc(), __pmd_alloc(), __pte_alloc())";
      if (e.purpose === "anon") return "anonymous memory touched for the first time gets a zeroed page of its own (do_anonymous_page())";
      if (e.purpose === "kvm-mmu")
        return `KVM needs pages for the ${w.tables} tables on this address's path, taken from its per-vCPU memory caches (mmu_topup_memory_caches() fills them from the buddy allocator)`;
      return lowerFirst(description);
    case "host.rmap_add":
      return "the new page is recorded in the reverse map, so reclaim can find its mapping later (folio_add_new_anon_rmap())";
    case "host.lru_add":
      return "a new anonymous page joins an LRU list, so reclaim can age it (folio_add_lru_vma())";
    case "kvm.faultin":
      return "with the page now mapped in QEMU's page table, get_user_pages() returns its pfn to KVM (hva_to_pfn())";
    case "kvm.sp_alloc":
      return "the shadow tables on this gva's path do not exist yet: KVM creates shadow pages for them, top down (FNAME(fetch) -> kvm_mmu_get_child_sp())";
    case "kvm.spte_install":
      return `the host pfn is known and KVM's tables reach the leaf level, so KVM writes the leaf ${w.entry} (${w.installPath})`;
    case "kvm.entry":
      return "the fault is fixed: KVM re-enters the guest, which retries its access and now finds the translation";
    default:
      return lowerFirst(description);
  }
}

const HEX = new Set(["gpa", "hva", "gva", "hpa"]);

function detailOf(e: SimEvent): string {
  return Object.entries(e)
    .filter(([k]) => k !== "kind" && k !== "t")
    .map(([k, v]) => `${k} ${typeof v === "number" && HEX.has(k) ? `0x${v.toString(16)}` : String(v)}`)
    .join(", ");
}

/** The fault-in's steps: consecutive events with the same key folded. */
export function chainSteps(events: readonly SimEvent[], mmu: string): ChainStep[] {
  const out: ChainStep[] = [];
  const decls = EVENT_KINDS as EventDecls;
  for (const e of events) {
    const key = stepKey(e);
    const last = out[out.length - 1];
    if (last && last.key === key) {
      last.count++;
      continue;
    }
    const d = decls[e.kind];
    out.push({
      key,
      words: plainWords(e, mmu),
      count: 1,
      detail: detailOf(e),
      reason: reasonFor(e, mmu, d?.description ?? e.kind),
      description: d?.description ?? "",
      mirrors: d?.mirrors ?? "",
    });
  }
  return out;
}

/** The choices for every question: each distinct step of the chain, in a fixed order that does not give the answer away. */
export function chainChoices(steps: readonly ChainStep[]): { key: string; words: string }[] {
  const seen = new Map<string, string>();
  for (const s of steps) if (!seen.has(s.key)) seen.set(s.key, s.words);
  return [...seen.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([key, words]) => ({ key, words }));
}

export interface ChainVerdict {
  right: boolean;
  answer: ChainStep;
  /** One sentence on a wrong answer: what comes next and why, and where the guess comes instead. */
  why: string;
}

/** Question i (1 <= i < steps.length): steps 0..i-1 are shown; which is step i? */
export function checkChain(steps: readonly ChainStep[], i: number, guess: string): ChainVerdict {
  const a = steps[i];
  if (!a || i < 1) throw new Error(`the fault-in has questions 1 to ${steps.length - 1}, not ${i}`);
  if (guess === a.key) return { right: true, answer: a, why: "" };
  const later = steps.findIndex((s, j) => j > i && s.key === guess);
  const earlier = steps.findIndex((s, j) => j < i && s.key === guess);
  const where =
    later > 0
      ? ` ("${steps[later]!.words}" comes later, at step ${later + 1})`
      : earlier >= 0
        ? ` ("${steps[earlier]!.words}" already happened, at step ${earlier + 1})`
        : "";
  return { right: false, answer: a, why: `Next is "${a.words}"${where}: ${a.reason}.` };
}

function lowerFirst(s: string): string {
  return s.replace(/\.$/, "").replace(/^[A-Z](?=[a-z ])/, (c) => c.toLowerCase());
}
