// SPDX-License-Identifier: MIT
// The counter quiz: "which counter moves when ...?", one situation per phase of the quiz's
// run (quiz_run.ts). The answer is the phase's own counters from the engine: a counter that
// moved (delta > 0) among ones that did not, or "none of these" when none did.

import type { CounterDecls } from "../hw/counters.js";
import { GUEST_STATS } from "../guest/stats.js";
import { HOST_VM_EVENT_STATS } from "../host/vmstat.js";
import { VCPU_STATS, VM_STATS } from "../kvm/stats.js";
import type { QuizPhase, QuizRun } from "./quiz_run.js";

type Source = "kvm" | "host" | "guest";

/** Counters asked about: cumulative ones, so a phase's value is its delta. */
const CANDIDATES: { source: Source; name: string; decls: CounterDecls }[] = [
  { source: "kvm", name: "exits", decls: VCPU_STATS },
  { source: "kvm", name: "pf_fixed", decls: VCPU_STATS },
  { source: "kvm", name: "pf_guest", decls: VCPU_STATS },
  { source: "kvm", name: "mmu_notifier_invalidations", decls: VM_STATS },
  { source: "host", name: "pgfault", decls: HOST_VM_EVENT_STATS },
  { source: "host", name: "pgmajfault", decls: HOST_VM_EVENT_STATS },
  { source: "host", name: "pswpout", decls: HOST_VM_EVENT_STATS },
  { source: "host", name: "pswpin", decls: HOST_VM_EVENT_STATS },
  { source: "guest", name: "pgfault", decls: GUEST_STATS },
];

/** What the scenario does in each phase, in words (the question; the answer comes from the counters). */
const SITUATIONS: Record<string, string> = {
  "first-write": "the guest writes 16 pages of memory it has never touched",
  "read-again": "the guest reads those 16 pages again",
  "swapped-out": "the host pages all of guest RAM out to swap (MADV_PAGEOUT on QEMU's mapping) and the guest reads the 16 pages again",
};

export const NONE = "none";

export interface CounterOption {
  /** "kvm.exits", "host.pgfault", "guest.pgfault", or NONE. */
  id: string;
  label: string;
  /** The counter's move in the phase (0 for NONE). */
  delta: number;
  meaning: string;
}

export interface CounterQuestion {
  phase: string;
  situation: string;
  options: CounterOption[];
  /** The option that moved, or NONE. */
  answer: string;
}

const LABEL: Record<Source, string> = { kvm: "KVM", host: "host /proc/vmstat", guest: "guest /proc/vmstat" };

function optionOf(p: QuizPhase, c: (typeof CANDIDATES)[number]): CounterOption {
  if (c.decls[c.name]?.kind !== "cumulative") throw new Error(`${c.source}.${c.name} is not a cumulative counter`);
  return {
    id: `${c.source}.${c.name}`,
    label: `${LABEL[c.source]} ${c.name}`,
    delta: p[c.source][c.name] ?? 0,
    meaning: c.decls[c.name]!.description,
  };
}

/** Up to `perPhase` questions per phase with a situation: each with one counter that moved and up to three that did not. */
export function counterQuestions(run: QuizRun, perPhase = 2): CounterQuestion[] {
  const out: CounterQuestion[] = [];
  for (const p of run.phases) {
    const situation = SITUATIONS[p.name];
    if (!situation) continue;
    const all = CANDIDATES.map((c) => optionOf(p, c));
    const moved = all.filter((o) => o.delta > 0);
    const still = all.filter((o) => o.delta === 0);
    if (moved.length === 0) {
      const none: CounterOption = { id: NONE, label: "none of these", delta: 0, meaning: "" };
      out.push({ phase: p.name, situation, options: [...still.slice(0, 3), none], answer: NONE });
      continue;
    }
    for (let k = 0; k < Math.min(perPhase, moved.length); k++) {
      // Spread the picks over the run's counters, so two questions of a phase differ.
      const m = moved[(k * Math.ceil(moved.length / perPhase)) % moved.length]!;
      const others = still.length <= 3 ? still : [0, 1, 2].map((j) => still[(k * 3 + j) % still.length]!);
      const options = all.filter((o) => o === m || others.includes(o));
      out.push({ phase: p.name, situation, options, answer: m.id });
    }
  }
  return out;
}

export interface CounterVerdict {
  right: boolean;
  /** One sentence: what moved and by how much, and what the wrong pick counts. */
  why: string;
}

export function checkCounter(q: CounterQuestion, id: string): CounterVerdict {
  const a = q.options.find((o) => o.id === q.answer)!;
  const g = q.options.find((o) => o.id === id);
  const moved =
    a.id === NONE
      ? "nothing here moved: every page is already mapped in the guest, by KVM and by the host, so no fault and no exit"
      : `${a.label} moved by ${a.delta} (${plain(a.meaning)})`;
  if (id === q.answer) return { right: true, why: `${upperFirst(moved)}.` };
  const wrong = g && g.id !== NONE ? `${g.label} did not move (it counts ${plain(g.meaning)}); ` : "";
  return { right: false, why: `${wrong}${moved}.` };
}

/** A counter's sentence inside another: no final full stop, lower case unless an acronym starts it. */
function plain(meaning: string): string {
  return meaning.replace(/\.$/, "").replace(/^[A-Z](?=[a-z ])/, (c) => c.toLowerCase());
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
