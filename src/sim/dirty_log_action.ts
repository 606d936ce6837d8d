// SPDX-License-Identifier: MIT
// The timeline's dirtyLog action: a VMM driving KVM dirty logging on a VM's RAM memslots, as
// QEMU's migration does (kvm_log_start/kvm_log_stop, kvm_physical_sync_dirty_bitmap,
// kvm_log_clear in chunks, kvm_dirty_ring_reap + KVM_RESET_DIRTY_RINGS), with the vCPUs stopped.
// The VM's dirtyLog options (mode, manual protect, initially set, eager split) are set on KVM
// when the VM is created (setupDirtyLog).

import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  KvmIoctlError,
  dirtyBitmapWords,
  kvmClearDirtyLog,
  kvmDirtyRingHarvest,
  kvmEnableDirtyRing,
  kvmEnableManualDirtyLogProtect,
  kvmEnablePml,
  kvmGetDirtyLog,
  kvmResetDirtyRings,
  kvmSetMemslotFlags,
} from "../kvm/dirty_log.js";
import { type Kvm, VmFailure } from "../kvm/kvm.js";
import type { Machine } from "./machine.js";
import type { TimelineAction, VmConfig } from "./scenario_schema.js";

type DirtyLogAction = Extract<TimelineAction, { kind: "dirtyLog" }>;

/** The VM's dirtyLog options on its KVM (KVM_ENABLE_CAP before logging starts; eager_page_split). */
export function setupDirtyLog(kvm: Kvm, o: VmConfig["dirtyLog"]): void {
  if (o === undefined) return;
  kvm.eagerPageSplit = o.eagerSplit;
  if (o.manualProtect)
    kvmEnableManualDirtyLogProtect(kvm, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | (o.initiallySet ? KVM_DIRTY_LOG_INITIALLY_SET : 0));
  if (o.mode === "pml") kvmEnablePml(kvm);
  if (o.mode !== "ring") return;
  kvmEnableDirtyRing(kvm, o.ringEntries);
  // QEMU's KVM_EXIT_DIRTY_RING_FULL handling: reap every vCPU's ring, then reset them.
  kvm.dirtyRingFullHandler = () => reapRings(kvm);
}

const ringBuf = new Float64Array(65536);

function reapRings(kvm: Kvm): number {
  let n = 0;
  for (const v of kvm.vcpus) n += kvmDirtyRingHarvest(v, ringBuf);
  kvmResetDirtyRings(kvm);
  kvm.stats.dirty_pages_harvested += n;
  return n;
}

/** Runs the action on every RAM memslot of the VM. */
export function applyDirtyLogAction(m: Machine, a: DirtyLogAction, checkMappings: boolean): void {
  const vm = m.vms.find((v) => v.cfg.name === a.vm)!;
  const kvm = vm.qemu.kvm;
  if (m.bus.on) m.bus.emit("sim.timeline", { vm: a.vm, action: "dirtyLog", advice: a.op, gpa: 0, size: vm.cfg.ram });
  try {
    if (a.op === "start" || a.op === "stop") {
      for (const slot of kvm.memslots.slots) kvmSetMemslotFlags(kvm, slot.id, a.op === "start" ? KVM_MEM_LOG_DIRTY_PAGES : 0);
    } else if (kvm.dirtyRingSize > 0) {
      reapRings(kvm);
    } else {
      for (const slot of kvm.memslots.slots) harvestSlot(kvm, slot.id, slot.npages, a.op === "clear" ? a.chunk : 0);
    }
  } catch (e) {
    if (e instanceof KvmIoctlError) throw new VmFailure(`timeline dirtyLog ${a.op} on ${a.vm}: ${e.message}`);
    throw e;
  }
  if (checkMappings) m.checker.checkStaleMappings();
}

/** KVM_GET_DIRTY_LOG, then (chunk > 0) KVM_CLEAR_DIRTY_LOG of what it returned, `chunk` pages per call. */
function harvestSlot(kvm: Kvm, slotId: number, npages: number, chunk: number): void {
  const bm = new Uint32Array(dirtyBitmapWords(npages));
  kvm.stats.dirty_pages_harvested += kvmGetDirtyLog(kvm, slotId, bm);
  if (chunk === 0) return;
  for (let first = 0; first < npages; first += chunk) {
    const n = Math.min(chunk, npages - first);
    kvmClearDirtyLog(kvm, slotId, first, n, bm.subarray(first / 32, first / 32 + Math.ceil(n / 32)));
  }
}
