// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { Engine, RunError } from "./engine.js";
import { MAX_GUEST_FAULTS_PER_ACCESS, Machine } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

const YAML = `seed: 1
host: {ram: 256MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 1MiB}
          - touch: {name: heap, op: write}
`;

describe("livelocks end as failures naming the loop and the address", () => {
  test("a guest #PF handler that says 'fixed' without fixing: the run fails after the bound, it does not spin", () => {
    const m = new Machine(loadScenario(YAML, "livelock.yaml"));
    let calls = 0;
    m.vms[0]!.kernel!.handlePageFault = () => {
      calls++;
      return "fixed";
    };
    let error: unknown = null;
    try {
      new Engine(m.scenario, {}, m).run();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RunError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^vm0/p0: livelock in the guest #PF retry loop: gva 0x[0-9a-f]+ still faults after the guest kernel fixed it ${MAX_GUEST_FAULTS_PER_ACCESS} times$`,
      ),
    );
    expect(calls).toBe(MAX_GUEST_FAULTS_PER_ACCESS);
  });
});
