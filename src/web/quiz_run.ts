// SPDX-License-Identifier: MIT
// The quiz's tiny run, made in the worker with the engine the CLI uses: one VM writes 16
// untouched pages, reads them again, and reads them once more after the host paged all of
// guest RAM out. It keeps the first fault-in's events (a VM exit to the VM entry that
// resumes the guest, the same events the story narrates) and each phase's counters, which
// the fault-in and counter questions are generated from (quiz_chain.ts, quiz_counters.ts).

import { EventBus, type SimEvent } from "../hw/events.js";
import { Engine } from "../sim/engine.js";
import { Machine } from "../sim/machine.js";
import { loadScenario } from "../sim/scenario_load.js";
import type { EventMap } from "../sim/sim_events.js";

export type QuizMmu = "ept" | "npt" | "shadow";

/** The tiny scenario, under `mmu`. */
export function quizScenario(mmu: QuizMmu): string {
  return `seed: 1
host: {ram: 64MiB, swap: 64MiB, thp: never}
vms:
  - name: vm0
    ram: 32MiB
    vcpus: 1
    mmu: ${mmu}
    backing: 4k
    processes:
      - name: p0
        steps:
          - mmap: {name: buf, size: 64KiB}
          - phase: first-write
          - touch: {name: buf, op: write}
          - phase: read-again
          - touch: {name: buf, op: read}
          - phase: swapped-out
          - touch: {name: buf, op: read}
timeline:
  - at: {phase: swapped-out}
    madvise: {vm: vm0, gpa: 0, size: 32MiB, advice: PAGEOUT}
`;
}

export interface QuizPhase {
  name: string;
  /** Counters of the phase alone: KVM's (VM and vCPUs summed), the host's vmstat, the guest's, by source. */
  kvm: Record<string, number>;
  host: Record<string, number>;
  guest: Record<string, number>;
}

export interface QuizRun {
  mmu: QuizMmu;
  /** The first fault-in: from the VM exit to the VM entry, every event between. */
  faultIn: SimEvent[];
  phases: QuizPhase[];
}

/** Events kept at most while looking for the first fault-in. */
const MAX_CHAIN = 200;

/** Runs the tiny scenario and keeps what the questions need. */
export function quizRun(mmu: QuizMmu): QuizRun {
  const s = loadScenario(quizScenario(mmu), "quiz.yaml");
  const bus = new EventBus<EventMap>();
  let open: SimEvent[] | null = null;
  let faultIn: SimEvent[] = [];
  bus.listen((e) => {
    if (faultIn.length > 0) return;
    if (e.kind === "kvm.exit") open = [];
    if (open === null) return;
    open.push({ ...e });
    if (e.kind === "kvm.entry") {
      // A fault-in installs a leaf; a CR3 exit under shadow paging, say, does not.
      if (open.some((x) => x.kind === "kvm.spte_install")) faultIn = open;
      open = null;
    } else if (open.length > MAX_CHAIN) open = null;
  });
  const engine = new Engine(s, {}, new Machine(s, bus));
  const report = engine.run();
  const phases = (report.phases ?? []).map(
    (p): QuizPhase => ({ name: p.name, kvm: p.vms[0]!.stats, host: p.host.vmstat, guest: p.vms[0]!.guest }),
  );
  return { mmu, faultIn, phases };
}
