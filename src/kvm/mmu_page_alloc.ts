// SPDX-License-Identifier: MIT
// Where the host frames of KVM's own tables (EPT/NPT tables, shadow pages) come from: the
// vCPU's kvm_mmu_memory_cache of table pages (vcpu->arch.mmu_shadow_page_cache, __GFP_ZERO),
// filled by mmu_topup_memory_caches() from __get_free_page(GFP_KERNEL_ACCOUNT), and free_page()
// of sp->spt when a table goes.
//
// simplified: no cache topped up ahead of mmu_lock: each table page comes from the host's page allocator when the MMU needs it.

import type { HostKernel } from "../host/kernel.js";
import { GFP_PGTABLE_USER, allocPages, freePages } from "../host/page_alloc.js";
import type { MmuPageAllocator } from "./mmu.js";

export class KvmMmuPageAllocator implements MmuPageAllocator {
  constructor(private readonly host: HostKernel) {}

  /** kvm_mmu_memory_cache_alloc(): a zeroed page, or -1 when the host is out of memory. */
  allocMmuPage(): number {
    return allocPages(this.host, 0, GFP_PGTABLE_USER, "kvm-mmu");
  }

  /** free_page(sp->spt). */
  freeMmuPage(pfn: number): void {
    freePages(this.host, pfn, 0);
  }
}
