// SPDX-License-Identifier: MIT
// The `migrate` timeline action: a destination QEMU on the same host (its own process, guest
// RAM and KVM VM), the migration thread driven by the engine between slices on the cost
// model's clock, and at the switch-over the guest resuming on the destination's vCPUs
// (KVM_GET_SREGS on the source, KVM_SET_SREGS on the destination), where the checker follows it.

import { type DirtySource, Migration, type MigrationHooks } from "../qemu/migration.js";
import { QemuVm } from "../qemu/vm.js";
import type { Machine, VmState } from "./machine.js";
import type { TimelineAction } from "./scenario_schema.js";

export type MigrateAction = Extract<TimelineAction, { kind: "migrate" }>;

/** Builds the dirty source of a pre-copy for `vm` (KVM's dirty log; null: none). */
export type DirtySourceFactory = (vm: QemuVm) => DirtySource | null;

/** One VM's migration as the machine runs it. */
export class MigrationRun implements MigrationHooks {
  readonly migration: Migration;
  /** Throttle changes: [model seconds since start is not known here, so the iteration], percent. */
  readonly throttleLog: number[] = [];

  constructor(
    readonly machine: Machine,
    readonly vm: VmState,
    a: MigrateAction,
    nowCost: number,
    dirty: DirtySourceFactory,
  ) {
    const src = vm.qemu;
    // The destination QEMU (-incoming): the same machine type and RAM, nothing touched yet.
    const dst = new QemuVm(src.host, { ...src.cfg, prealloc: false }, machine.bus);
    this.migration = new Migration(
      src,
      dst,
      {
        mode: a.mode,
        bandwidth: a.bandwidth,
        downtimeLimit: a.downtimeLimit / 1000,
        rtt: a.rtt / 1e6,
        autoConverge: a.autoConverge,
        throttleInitial: a.throttleInitial,
        throttleIncrement: a.throttleIncrement,
        maxIterations: a.maxIterations,
        postcopyAfter: a.postcopyAfter,
      },
      this,
      dirty(src),
      nowCost,
    );
  }

  stopVcpus(): void {
    for (const v of this.vm.qemu.kvm.vcpus) v.halt();
  }

  setThrottle(pct: number): void {
    this.throttleLog.push(pct);
  }

  /** The guest resumes on `dst`: its vCPUs get the source's CR3 and CR4.PCIDE, the guest kernel runs on them. */
  switchover(dst: QemuVm): void {
    const vm = this.vm;
    const src = vm.qemu;
    src.kvm.vcpus.forEach((sv, i) => {
      const dv = dst.kvm.vcpus[i]!;
      sv.halt();
      dv.setSregsPcide(sv.pcide);
      dv.setSregsCr3(sv.archMmu.guestRootGfn(), sv.mmu.pcid);
      dv.pageObserver = sv.pageObserver;
    });
    dst.kvm.racePoint = src.kvm.racePoint;
    dst.kvm.debugSkipSeqCheck = src.kvm.debugSkipSeqCheck;
    dst.mm.notifiers.racePoint = src.mm.notifiers.racePoint;
    vm.migrateTo(dst);
  }
}
