// SPDX-License-Identifier: MIT
// How KVM reaches the host memory behind guest RAM: hva_to_pfn() (virt/kvm/kvm_main.c) on the
// mm of the process that created the VM (kvm->mm), host_pfn_mapping_level() and
// kvm_release_page_dirty(). The fault path (kvmFaultinPfn in page_fault.ts) calls these through
// HostMmOps, so a test can hand KVM another host.

import type { HostKernel } from "../host/kernel.js";
import type { Mm } from "../host/mm_types.js";
import { EFAULT, EHWPOISON, ENOMEM, type HostMmOps } from "./mmu.js";

export class GupOps implements HostMmOps {
  gupWritable = false;
  constructor(
    private readonly host: HostKernel,
    /** kvm->mm: the VMM's mm, whose page tables map guest RAM. */
    private readonly mm: Mm,
  ) {}

  /** hva_to_pfn_slow(): get_user_pages_unlocked(), faulting the page in; a negative errno if it fails. */
  gup(hva: number, write: boolean): number {
    const r = this.host.getUserPages(this.mm, hva, write);
    if (!r.ok) return r.error === "ENOMEM" ? -ENOMEM : r.error === "EHWPOISON" ? -EHWPOISON : -EFAULT;
    this.gupWritable = r.writable;
    return r.pfn;
  }

  gupError(err: number): string {
    return err === -ENOMEM ? this.host.lastOomMessage || "out of memory" : err === -EHWPOISON ? "EHWPOISON" : "EFAULT";
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
