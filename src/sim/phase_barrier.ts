// SPDX-License-Identifier: MIT
// Phase barriers (`- phase: name` steps): the processes that name a phase wait at its marker
// until every other one has reached it (or finished); the last to arrive completes the
// boundary, where the engine snapshots the counters and runs the phase's timeline actions.

import type { ProcState, VmState } from "./machine.js";
import type { Scenario, TimelineAction } from "./scenario_schema.js";

export class PhaseBarrier {
  /** Per phase: the processes whose steps name it, and those that reached it (or finished). */
  private readonly members = new Map<string, ProcState[]>();
  private readonly arrived = new Map<string, Set<ProcState>>();
  /** Timeline actions attached to a phase, in file order. */
  private readonly actions = new Map<string, TimelineAction[]>();
  /** Processes waiting at a phase marker for the others. */
  readonly waiting = new Map<ProcState, string>();

  constructor(vms: readonly VmState[], scenario: Scenario) {
    for (const vm of vms) {
      for (const ps of vm.procs) {
        for (const st of ps.cfg.steps) {
          if (st.kind !== "phase") continue;
          const list = this.members.get(st.name);
          if (list === undefined) this.members.set(st.name, [ps]);
          else list.push(ps);
        }
      }
    }
    for (const ev of scenario.timeline) {
      if (ev.at.clock !== "phase") continue;
      const list = this.actions.get(ev.at.phase) ?? [];
      list.push(ev.action);
      this.actions.set(ev.at.phase, list);
    }
  }

  /** Whether any step marks a phase. */
  get any(): boolean {
    return this.members.size > 0;
  }

  canRun(p: ProcState): boolean {
    return !p.done && !this.waiting.has(p);
  }

  /** `ps` reached its marker of phase `name`: true when that completes the barrier, false when `ps` waits. */
  arrive(ps: ProcState, name: string): boolean {
    let arrived = this.arrived.get(name);
    if (arrived === undefined) this.arrived.set(name, (arrived = new Set()));
    arrived.add(ps);
    if (!this.members.get(name)!.every((p) => p.done || arrived.has(p))) {
      this.waiting.set(ps, name);
      return false;
    }
    return true;
  }

  /** After the boundary of `name`: its waiters go on. */
  release(name: string): void {
    for (const [p, at] of this.waiting) if (at === name) this.waiting.delete(p);
  }

  /** The timeline actions at the boundary of `name`. */
  actionsAt(name: string): readonly TimelineAction[] {
    return this.actions.get(name) ?? [];
  }

  /** Why no process can go on (every runnable one waits at a barrier). */
  deadlock(): string {
    const at = [...this.waiting].map(([p, name]) => {
      const missing = this.members
        .get(name)!
        .filter((q) => !q.done && !this.arrived.get(name)!.has(q))
        .map((q) => `${q.vm.cfg.name}/${q.cfg.name}`);
      return `${p.vm.cfg.name}/${p.cfg.name} waits at phase "${name}" for ${missing.join(", ")}`;
    });
    return `no process can go on: ${at.join("; ")}`;
  }
}
