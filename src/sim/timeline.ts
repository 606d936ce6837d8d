// SPDX-License-Identifier: MIT
// A timeline action (SCENARIO.md "timeline"): QEMU madvises a range of guest RAM, as a balloon
// driver's host side does, between scheduler slices (no vCPU is inside an access or a fault).

import type { Machine } from "./machine.js";
import { VmFailure } from "../kvm/kvm.js";
import { applyDirtyLogAction } from "./dirty_log_action.js";
import type { TimelineAction } from "./scenario_schema.js";

/** Runs `a`; the checker learns what the range now reads, and checks the leaves with `checkMappings`. */
export function applyTimelineAction(m: Machine, a: TimelineAction, checkMappings: boolean): void {
  if (a.kind === "dirtyLog") {
    applyDirtyLogAction(m, a, checkMappings);
    return;
  }
  const vm = m.vms.find((v) => v.cfg.name === a.vm)!;
  if (m.bus.on) m.bus.emit("sim.timeline", { vm: a.vm, action: "madvise", advice: a.advice, gpa: a.gpa, size: a.size });
  try {
    vm.qemu.madvise(a.gpa, a.size, a.advice);
  } catch (e) {
    throw new VmFailure(`timeline madvise: ${(e as Error).message}`);
  }
  m.checker.rangeDiscarded(vm.id, a.gpa, a.size, a.advice);
  if (checkMappings) m.checker.checkStaleMappings();
}
