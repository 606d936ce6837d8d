// SPDX-License-Identifier: MIT
// Timeline actions (SCENARIO.md "timeline"), between scheduler slices (no vCPU is inside an
// access or a fault): QEMU madvises a range of guest RAM, or the host sets a balloon's target.

import type { Machine } from "./machine.js";
import { VmFailure } from "../kvm/kvm.js";
import { applyDirtyLogAction } from "./dirty_log_action.js";
import type { TimelineAction } from "./scenario_schema.js";
import { MigrationRun } from "./migrate.js";
import { kvmDirtySource } from "../qemu/dirty_sync.js";

/** Runs `a` at `now` (cycles); the checker learns what ranges now read, and checks the leaves with `checkMappings`. */
export function applyTimelineAction(m: Machine, a: TimelineAction, checkMappings: boolean, now = 0): void {
  if (a.kind === "dirtyLog") {
    applyDirtyLogAction(m, a, checkMappings);
    return;
  }
  const vm = m.vms.find((v) => v.cfg.name === a.vm)!;
  if (a.kind === "migrate") {
    if (m.bus.on) m.bus.emit("sim.timeline", { vm: a.vm, action: "migrate", advice: a.mode, gpa: 0, size: vm.cfg.ram });
    m.migrations.push(new MigrationRun(m, vm, a, now, (q) => kvmDirtySource(q, a.clearBitmapShift)));
    return;
  }
  if (a.kind === "balloon") {
    const b = vm.balloon!;
    b.device.setTarget(a.target);
    b.driver.configChanged(now); // the config interrupt: virtballoon_changed()
    if (m.bus.on) m.bus.emit("sim.balloon", { vm: a.vm, targetPages: b.device.numPages, actualPages: b.device.actual });
  } else {
    if (m.bus.on) m.bus.emit("sim.timeline", { vm: a.vm, action: "madvise", advice: a.advice, gpa: a.gpa, size: a.size });
    try {
      vm.qemu.madvise(a.gpa, a.size, a.advice);
    } catch (e) {
      throw new VmFailure(`timeline madvise: ${(e as Error).message}`);
    }
    m.checker.rangeDiscarded(vm.id, a.gpa, a.size, a.advice);
  }
  if (checkMappings) m.checker.checkStaleMappings();
}
