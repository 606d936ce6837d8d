// SPDX-License-Identifier: MIT
// Load-time checks of phase markers (`- phase: name`) and of timeline actions attached to a
// phase (`at: {phase: name}`). A marker is a barrier for every process that names the phase,
// so the checks rule out what would make processes wait for each other forever: a phase
// named twice in one step list, or two lists naming phases in opposite orders (directly or
// around a cycle through several lists).

import type { z } from "zod";
import { START_PHASE } from "./scenario_limits.js";
import type { RawScenario } from "./scenario_schema.js";
import { didYouMean } from "./scenario_suggest.js";

type Path = (string | number)[];
type Report = (path: Path, message: string) => void;

const quoted = (names: Iterable<string>) => [...names].map((n) => `"${n}"`).join(", ");

/** Names of every phase the scenario's steps mark, in the order first named. */
export function phaseNames(s: Pick<RawScenario, "vms">): string[] {
  const names = new Set<string>();
  for (const vm of s.vms) for (const p of vm.processes) for (const st of p.steps) if (st.kind === "phase") names.add(st.name);
  return [...names];
}

/** The checks, for checkScenario (superRefine). */
export function checkPhases(s: RawScenario, ctx: z.RefinementCtx): void {
  const report: Report = (path, message) => ctx.addIssue({ code: "custom", path, message });
  checkMarkers(s, report);
  checkTimelinePhases(s, report);
}

function checkMarkers(s: RawScenario, report: Report): void {
  // before.get(a).get(b): where a list names a (directly) before b.
  const before = new Map<string, Map<string, string>>();
  /** A chain of "x before y in list" from `from` to `to`, or null. */
  const chain = (from: string, to: string): string[] | null => {
    const came = new Map<string, { prev: string; where: string }>();
    const queue = [from];
    const seen = new Set(queue);
    while (queue.length > 0) {
      const x = queue.shift()!;
      if (x === to) {
        const hops: string[] = [];
        for (let y = to; y !== from; ) {
          const c = came.get(y)!;
          hops.unshift(`"${c.prev}" before "${y}" in ${c.where}`);
          y = c.prev;
        }
        return hops;
      }
      for (const [y, where] of before.get(x) ?? []) {
        if (seen.has(y)) continue;
        seen.add(y);
        came.set(y, { prev: x, where });
        queue.push(y);
      }
    }
    return null;
  };

  s.vms.forEach((vm, i) => {
    vm.processes.forEach((p, j) => {
      const where = `${vm.name}/${p.name}`;
      const seenAt = new Map<string, number>();
      let prev: string | undefined;
      p.steps.forEach((st, k) => {
        if (st.kind !== "phase") return;
        const here: Path = ["vms", i, "processes", j, "steps", k, "phase"];
        const name = st.name;
        if (name === START_PHASE) {
          report(
            here,
            `"${START_PHASE}" is the name of the stretch before the first phase boundary (VM setup and the first steps); give this phase another name`,
          );
          return;
        }
        const first = seenAt.get(name);
        if (first !== undefined) {
          report(
            here,
            `phase "${name}" is already marked at steps[${first}] of this process; a process enters a phase once, so give this one another name (like ${name}2)`,
          );
          return;
        }
        seenAt.set(name, k);
        if (prev !== undefined) {
          const opposite = chain(name, prev);
          if (opposite !== null) {
            report(
              here,
              `phase "${name}" comes after "${prev}" here, but ${opposite.join(" and ")}; name phases in the same order in every step list (a process waits at each marker for the others that name it, so opposite orders would wait for each other forever)`,
            );
          } else {
            let m = before.get(prev);
            if (m === undefined) before.set(prev, (m = new Map()));
            if (!m.has(name)) m.set(name, where);
          }
        }
        prev = name;
      });
    });
  });
}

function checkTimelinePhases(s: RawScenario, report: Report): void {
  const names = phaseNames(s).filter((n) => n !== START_PHASE);
  s.timeline.forEach((ev, i) => {
    if (ev.at.clock !== "phase") return;
    const here: Path = ["timeline", i, "at", "phase"];
    const name = ev.at.phase;
    if (names.includes(name)) return;
    if (name === START_PHASE) {
      report(
        here,
        `"${START_PHASE}" is the stretch before the first phase boundary and has no boundary to run at; for an action at the very start use at: {accesses: 0}${names.length > 0 ? `, or one of the phases: ${quoted(names)}` : ""}`,
      );
      return;
    }
    if (names.length === 0) {
      report(here, `no phase named "${name}": no step marks a phase; add a step \`- phase: ${name}\` to the processes that take part`);
      return;
    }
    const guess = didYouMean(name, names);
    report(
      here,
      `no phase named "${name}"; ${guess === undefined ? "" : `did you mean "${guess}"? `}phases named by steps: ${quoted(names)}`,
    );
  });
}
