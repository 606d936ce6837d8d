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
  return { right: false, answer: a, why: `Next is "${a.words}"${where}: ${lowerFirst(a.description)} (${a.mirrors}).` };
}

function lowerFirst(s: string): string {
  return s.replace(/\.$/, "").replace(/^[A-Z](?=[a-z ])/, (c) => c.toLowerCase());
}
