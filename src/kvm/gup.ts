// SPDX-License-Identifier: MIT
// How KVM reaches the host memory behind guest RAM: hva_to_pfn() (virt/kvm/kvm_main.c) on the
// mm of the process that created the VM (kvm->mm), host_pfn_mapping_level() and
// kvm_release_page_dirty(). The fault path (kvmFaultinPfn in mmu.ts) calls these through
// HostMmOps, so a test can hand KVM another host.

import type { HostKernel } from "../host/kernel.js";
import type { Mm } from "../host/mm_types.js";
import type { HostMmOps } from "./kvm.js";

export class GupOps implements HostMmOps {
  gupWritable = false;
  lastError = "";
  constructor(
    private readonly host: HostKernel,
    /** kvm->mm: the VMM's mm, whose page tables map guest RAM. */
    private readonly mm: Mm,
  ) {}

  /** hva_to_pfn_slow(): get_user_pages_unlocked(), faulting the page in. */
  gup(hva: number, write: boolean): number {
    const r = this.host.getUserPages(this.mm, hva, write);
    if (!r.ok) {
      this.lastError = r.error === "ENOMEM" ? this.host.lastOomMessage || "out of memory" : r.error;
      return -1;
    }
    this.gupWritable = r.writable;
    return r.pfn;
  }

  /** hva_to_pfn_fast(): get_user_page_fast_only(), no fault. */
  gupFast(hva: number, write: boolean): number {
    const r = this.host.getUserPagesFast(this.mm, hva, write);
    if (r === null || !r.ok) return -1;
    this.gupWritable = r.writable;
    return r.pfn;
  }

  hostMappingLevel(hva: number): number {
    return this.host.hostPfnMappingLevel(this.mm, hva);
  }

  markDirty(pfn: number): void {
    this.host.folioMarkDirty(pfn);
  }
}
