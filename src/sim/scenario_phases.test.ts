// SPDX-License-Identifier: MIT
// Load-time errors for phase markers (`- phase: name`) and timeline actions `at: {phase: name}`:
// each names the place, what is wrong and what would be valid; `phase` (a boundary) and
// `phases` (the working-set generator) are never confused.
import { describe, expect, test } from "vitest";
import { loadScenario, ScenarioError } from "./scenario_load.js";

function problems(text: string): string[] {
  try {
    loadScenario(text, "demo.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).format().split("\n");
  }
  throw new Error("the scenario validated");
}

/** A scenario whose processes have these step lists (flow style, one per line) and this timeline. */
function scenario(lists: string[], timeline = ""): string {
  return `host: {ram: 256MiB}
vms:
  - name: vm0
    ram: 128MiB
    vcpus: 2
    processes:
${lists.map((steps, i) => `      - {name: p${i}, vcpu: ${i % 2}, steps: [${steps}]}`).join("\n")}
${timeline === "" ? "" : `timeline:\n${timeline}`}`;
}

const PAGEOUT = "    madvise: {vm: vm0, gpa: 0, size: 4KiB, advice: PAGEOUT}";

describe("phase markers", () => {
  test("a valid scenario loads: a marker is a step of kind phase; an action at a phase is tagged with its clock", () => {
    const s = loadScenario(
      scenario(["{phase: populate}, {touch: {size: 4KiB, op: write}}, {phase: age}", "{phase: age}"], `  - at: {phase: age}\n${PAGEOUT}`),
      "demo.yaml",
    );
    expect(s.vms[0]!.processes[0]!.steps[0]).toEqual({ kind: "phase", name: "populate" });
    expect(s.timeline[0]!.at).toEqual({ clock: "phase", phase: "age" });
  });

  test("the same phase twice in one step list", () => {
    expect(problems(scenario(["{phase: a}, {phase: b}, {phase: a}"]))).toEqual([
      'demo.yaml:7:69: vms[0].processes[0].steps[2].phase: phase "a" is already marked at steps[0] of this process; a process enters a phase once, so give this one another name (like a2)',
    ]);
  });

  test("two step lists naming phases in opposite orders, and a cycle through three lists", () => {
    expect(problems(scenario(["{phase: populate}, {phase: access}", "{phase: access}, {phase: populate}"]))).toEqual([
      'demo.yaml:8:62: vms[0].processes[1].steps[1].phase: phase "populate" comes after "access" here, but "populate" before "access" in vm0/p0; name phases in the same order in every step list (a process waits at each marker for the others that name it, so opposite orders would wait for each other forever)',
    ]);
    expect(problems(scenario(["{phase: x}, {phase: y}", "{phase: y}, {phase: z}", "{phase: z}, {phase: x}"]))).toEqual([
      'demo.yaml:9:57: vms[0].processes[2].steps[1].phase: phase "x" comes after "z" here, but "x" before "y" in vm0/p0 and "y" before "z" in vm0/p1; name phases in the same order in every step list (a process waits at each marker for the others that name it, so opposite orders would wait for each other forever)',
    ]);
  });

  test("phases a list leaves out are not an order: [a, c] and [b, c] and [a, b, c] agree", () => {
    expect(() =>
      loadScenario(scenario(["{phase: a}, {phase: c}", "{phase: b}, {phase: c}", "{phase: a}, {phase: b}, {phase: c}"]), "d.yaml"),
    ).not.toThrow();
  });

  test('"start" is the name of the stretch before the first marker', () => {
    expect(problems(scenario(["{phase: start}"]))).toEqual([
      'demo.yaml:7:45: vms[0].processes[0].steps[0].phase: "start" is the name of the stretch before the first phase boundary (VM setup and the first steps); give this phase another name',
    ]);
  });

  test("phase takes a name; phases (the generator) takes a mapping; each error says which is which", () => {
    expect(problems(scenario(["{phase: {accesses: 10, workingSet: 4KiB}}"]))).toEqual([
      "demo.yaml:7:45: vms[0].processes[0].steps[0].phase: a mapping is not a phase name; `phase` takes a name (- phase: populate) and marks a phase boundary; the working-set generator is `phases: {accesses: N, workingSet: SIZE}`",
    ]);
    expect(problems(scenario(["{phases: populate}"]))).toEqual([
      'demo.yaml:7:46: vms[0].processes[0].steps[0].phases: "populate" is not a mapping; `phases` is the working-set generator ({accesses: N, workingSet: SIZE}); a phase boundary is `phase: populate` (singular)',
    ]);
    expect(problems(scenario(['{phase: "2nd pass"}']))).toEqual([
      'demo.yaml:7:45: vms[0].processes[0].steps[0].phase: "2nd pass" is not a phase name; letters, digits, _ . and -, starting with a letter or _',
    ]);
    expect(problems(scenario(["{phaze: populate}"]))).toEqual([
      'demo.yaml:7:38: vms[0].processes[0].steps[0].phaze: unknown key "phaze"; did you mean "phase"?',
    ]);
  });
});

describe("timeline actions at a phase", () => {
  const lists = ["{phase: populate}, {phase: access}", "{phase: access}"];

  test("an unknown phase: the place, a guess, and the phases there are", () => {
    expect(problems(scenario(lists, `  - at: {phase: acess}\n${PAGEOUT}`))).toEqual([
      'demo.yaml:10:17: timeline[0].at.phase: no phase named "acess"; did you mean "access"? phases named by steps: "populate", "access"',
    ]);
    expect(problems(scenario(lists, `  - at: {phase: age}\n${PAGEOUT}`))).toEqual([
      'demo.yaml:10:17: timeline[0].at.phase: no phase named "age"; phases named by steps: "populate", "access"',
    ]);
  });

  test("a phase when no step marks any, and the start of the run", () => {
    expect(problems(scenario(["{touch: {size: 4KiB, op: write}}"], `  - at: {phase: age}\n${PAGEOUT}`))).toEqual([
      'demo.yaml:9:17: timeline[0].at.phase: no phase named "age": no step marks a phase; add a step `- phase: age` to the processes that take part',
    ]);
    expect(problems(scenario(lists, `  - at: {phase: start}\n${PAGEOUT}`))).toEqual([
      'demo.yaml:10:17: timeline[0].at.phase: "start" is the stretch before the first phase boundary and has no boundary to run at; for an action at the very start use at: {accesses: 0}, or one of the phases: "populate", "access"',
    ]);
  });

  test("a phase and a time in one at", () => {
    expect(problems(scenario(lists, `  - at: {phase: access, accesses: 5}\n${PAGEOUT}`))).toEqual([
      "demo.yaml:10:9: timeline[0].at: both accesses and phase given; exactly one of {cycles: N}, {accesses: N} or {phase: name}",
    ]);
  });
});
