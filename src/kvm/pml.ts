// SPDX-License-Identifier: MIT
// Page-modification logging on VMX (arch/x86/kvm/vmx/vmx.c, arch/x86/kvm/x86.c): with PML the
// CPU logs the gpa of each page whose EPT dirty flag it sets in a 512-entry per-vCPU buffer
// (hw/walk_nested.ts); KVM empties it into the dirty bitmap at every VM exit
// (vmx_flush_pml_buffer() from vmx_handle_exit()), a full buffer exits by itself
// (EXIT_REASON_PML_FULL, handle_pml_full()), and a harvest first kicks every vCPU so their
// buffers are flushed (kvm_arch_sync_dirty_log()). PML is on in the VMCS only while some
// memslot logs (vmx_update_cpu_dirty_logging()).

import { PAGE_SIZE } from "../hw/addr.js";
import { PML_HEAD_INDEX, PML_LOG_NR_ENTRIES } from "../hw/mmu_defs.js";
import { markPageDirtyInSlot } from "./dirty_mark.js";
import { EXITING_GUEST_MODE, IN_GUEST_MODE, type Kvm, type Vcpu } from "./kvm.js";
import { kvmSlotDirtyTrackEnabled, kvmVcpuGfnToMemslot } from "./memslot.js";

/** kvm_x86_ops.cpu_dirty_log_size: the PML buffer's entries with PML, else 0 (logging write-protects). */
export function cpuDirtyLogSize(kvm: Kvm): number {
  return kvm.enablePml ? PML_LOG_NR_ENTRIES : 0;
}

/**
 * vmx_flush_pml_buffer() (kvm_flush_pml_buffer()): each logged gpa, in the order the CPU wrote
 * them (entry 511 first), marks its page dirty (kvm_vcpu_mark_page_dirty()); the index goes
 * back to 511. Returns how many entries there were.
 */
export function vmxFlushPmlBuffer(vcpu: Vcpu): number {
  const hw = vcpu.mmu;
  const idx = hw.pmlIndex;
  if (idx === PML_HEAD_INDEX) return 0;
  // The index points at the next free entry, unless the log just overflowed (0xffff).
  const tail = idx >= PML_LOG_NR_ENTRIES ? 0 : idx + 1;
  const kvm = vcpu.kvm;
  for (let i = PML_HEAD_INDEX; i >= tail; i--) {
    const gfn = Math.floor(hw.pmlEntry(i) / PAGE_SIZE);
    const slot = kvmVcpuGfnToMemslot(vcpu, kvm.memslots, gfn);
    if (slot !== null) markPageDirtyInSlot(kvm, slot, gfn);
  }
  hw.pmlIndex = PML_HEAD_INDEX;
  return PML_HEAD_INDEX + 1 - tail;
}

/**
 * kvm_mmu_update_cpu_dirty_logging() -> vmx_update_cpu_dirty_logging(): the PML control of
 * every vCPU on while any memslot logs dirty pages.
 * simplified: set at once, not through KVM_REQ_UPDATE_CPU_DIRTY_LOGGING at each vCPU's next entry.
 */
export function kvmUpdateCpuDirtyLogging(kvm: Kvm): void {
  if (!kvm.enablePml) return;
  const on = kvm.memslots.slots.some(kvmSlotDirtyTrackEnabled);
  for (const v of kvm.vcpus) v.mmu.pmlOn = on;
}

/**
 * kvm_arch_sync_dirty_log(): with PML, every vCPU is kicked, and the VM exit of the kick
 * flushes its buffer before the dirty bitmap is read.
 * simplified: a vCPU in guest mode takes the kick's exit at once (it is between accesses), so the
 * harvest sees its buffer flushed; KVM does not wait for the IPI's exit.
 */
export function kvmArchSyncDirtyLog(kvm: Kvm): void {
  if (!kvm.enablePml) return;
  for (const v of kvm.vcpus) {
    v.kick();
    if (v.mode !== EXITING_GUEST_MODE) continue;
    v.kickExit();
    v.mode = IN_GUEST_MODE;
  }
}
