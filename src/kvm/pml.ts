// SPDX-License-Identifier: MIT
// Page-modification logging on VMX (arch/x86/kvm/vmx/vmx.c, arch/x86/kvm/x86.c): with PML the
// CPU logs the gpa of each page whose EPT dirty flag it sets in a 512-entry per-vCPU buffer
// (hw/walk_nested.ts); KVM empties it into the dirty bitmap at every VM exit
// (vmx_flush_pml_buffer() from vmx_handle_exit()), a full buffer exits by itself
// (EXIT_REASON_PML_FULL, handle_pml_full()), and a harvest first kicks every vCPU so their
// buffers are flushed (kvm_arch_sync_dirty_log(), in dirty_log.ts with the other uses of
// cpu_dirty_log_size). PML is on in the VMCS only while some memslot logs.

import { PAGE_SIZE } from "../hw/addr.js";
import { PML_HEAD_INDEX, PML_LOG_NR_ENTRIES } from "../hw/mmu_defs.js";
import { type DirtyLogCtx, markPageDirtyInSlot } from "./dirty_mark.js";
import { type Memslot, type Memslots, kvmVcpuGfnToMemslot } from "./memslot.js";

/** What vmx_flush_pml_buffer() reads of a vCPU: the hardware's log, the last-used slot, the VM's memslots. */
export interface PmlVcpu {
  readonly mmu: { pmlIndex: number; pmlEntry(i: number): number };
  lastUsedSlot: Memslot | null;
  readonly kvm: DirtyLogCtx & { readonly memslots: Memslots };
}

/**
 * vmx_flush_pml_buffer() (kvm_flush_pml_buffer()): each logged gpa, in the order the CPU wrote
 * them (entry 511 first), marks its page dirty (kvm_vcpu_mark_page_dirty()); the index goes
 * back to 511. Returns how many entries there were.
 */
export function vmxFlushPmlBuffer(vcpu: PmlVcpu): number {
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
