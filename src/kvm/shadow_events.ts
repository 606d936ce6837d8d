// SPDX-License-Identifier: MIT
// The events the shadow MMU emits (SEED-PATHS.md path 2), each with a sentence and the kernel
// function it stands for, so a narration can be written from the stream.

import type { EventKindDesc } from "../hw/events.js";

export const SHADOW_EVENT_KINDS: readonly EventKindDesc[] = [
  {
    kind: "kvm.exit",
    description: "a VM exit; under shadow paging the reasons are EXCEPTION_NMI (an intercepted #PF), CR_ACCESS (a CR3 load) and INVLPG",
    mirrors: "vcpu_enter_guest() / vmx_handle_exit()",
  },
  { kind: "kvm.entry", description: "KVM resumes the guest after handling an exit", mirrors: "vmx_vcpu_run()" },
  {
    kind: "kvm.inject_pf",
    description: "KVM's walk of the guest tables explains the fault: it is reflected into the guest",
    mirrors: "kvm_inject_emulated_page_fault()",
  },
  { kind: "kvm.faultin", description: "KVM gets the host page behind the faulting guest frame", mirrors: "kvm_faultin_pfn()" },
  {
    kind: "kvm.fault_retry",
    description: "an invalidation raced the fault: resume the guest and let it fault again",
    mirrors: "is_page_fault_stale()",
  },
  {
    kind: "kvm.sp_alloc",
    description: "a shadow page for a guest table (or a direct page for a guest huge page) is created",
    mirrors: "kvm_mmu_alloc_shadow_page()",
  },
  {
    kind: "kvm.sp_zap",
    description: "a shadow page is zapped: children and parents unlinked, its frame no longer shadowed",
    mirrors: "__kvm_mmu_prepare_zap_page()",
  },
  { kind: "kvm.spte_install", description: "a leaf shadow entry maps a guest frame's host page", mirrors: "mmu_set_spte()" },
  { kind: "kvm.unsync", description: "a guest leaf table may be written freely until the guest flushes", mirrors: "kvm_unsync_page()" },
  { kind: "kvm.sync_page", description: "an unsync table's entries are re-read and its sptes fixed", mirrors: "kvm_sync_page()" },
  { kind: "kvm.pte_write", description: "the emulator wrote guest RAM while KVM shadows guest tables", mirrors: "kvm_mmu_track_write()" },
  {
    kind: "kvm.write_flooding",
    description: "an upper-level table written three times without use is zapped",
    mirrors: "detect_write_flooding()",
  },
  { kind: "kvm.root_load", description: "the vCPU gets a root for the guest's CR3 (no cached root matched)", mirrors: "kvm_mmu_load()" },
  {
    kind: "kvm.remote_tlb_flush",
    description: "every vCPU must drop translations derived from the changed sptes",
    mirrors: "kvm_flush_remote_tlbs()",
  },
  {
    kind: "kvm.notifier_zap",
    description: "the host is about to change QEMU's mapping of guest RAM: KVM drops the sptes over it",
    mirrors: "kvm_unmap_gfn_range()",
  },
];
