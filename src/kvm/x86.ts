// SPDX-License-Identifier: MIT
// VM and vCPU creation on x86 (arch/x86/kvm/x86.c kvm_arch_init_vm(), kvm_arch_vcpu_create();
// mmu.c kvm_mmu_init_vm(), kvm_mmu_create()): the MMU is chosen once, when the VM is created
// (tdp_enabled), and every vCPU gets the per-vCPU MMU that goes with it.

import type { EventBus } from "../hw/events.js";
import type { KvmEventMap } from "./kvm_events.js";
import type { HostKernel } from "../host/kernel.js";
import type { Mm } from "../host/mm_types.js";
import { GupOps } from "./gup.js";
import { Kvm, type KvmArch, type KvmOptions } from "./kvm.js";
import type { MmuPageAllocator } from "./mmu.js";
import { KvmMmuPageAllocator } from "./mmu_page_alloc.js";
import { ShadowMmu } from "./shadow_mmu.js";
import { ShadowSync } from "./shadow_sync.js";
import { TdpMmu } from "./tdp_mmu.js";
import { ShadowPagingVcpuMmu, TdpVcpuMmu } from "./vcpu_mmu.js";

/**
 * KVM_CREATE_VM (kvm_create_vm()): a VM bound to the mm of the process that creates it (kvm->mm),
 * whose pages KVM reaches by get_user_pages and whose changes it hears of through the
 * mmu_notifier it registers there (kvm_init_mmu_notifier()); its tables' pages come from the
 * host's page allocator.
 */
export function kvmCreateVm(host: HostKernel, mm: Mm, name: string, opts: KvmOptions, bus: EventBus<KvmEventMap>): Kvm {
  const alloc = new KvmMmuPageAllocator(host);
  const kvm = new Kvm(name, host.mem, new GupOps(host, mm), opts, bus, (k) => kvmArchInitVm(k, alloc));
  mm.registerNotifier(kvm.notifier);
  return kvm;
}

function kvmArchInitVm(kvm: Kvm, alloc: MmuPageAllocator): KvmArch {
  const mode = kvm.opts.mode;
  if (mode === "shadow") {
    const shadow = new ShadowMmu(kvm.mem, alloc, kvm.memslots, kvm.host, kvm.stats, kvm.bus, {
      flushRemoteTlbs: () => kvm.flushRemoteTlbs(),
      requestFreeObsoleteRoots: () => {
        for (const v of kvm.vcpus) v.archMmu.requestFreeObsoleteRoots();
      },
    });
    shadow.dirtyLogCtx = kvm;
    shadow.gmem.dirtyLogCtx = kvm;
    const sync = new ShadowSync(shadow);
    kvm.stats.n_max_mmu_pages = shadow.nMaxMmuPages;
    return { mmu: shadow, createVcpuMmu: (v) => new ShadowPagingVcpuMmu(v, shadow, sync) };
  }
  const ad = mode === "npt" ? true : kvm.opts.eptAd;
  const tdp = new TdpMmu(kvm.mem, alloc, mode === "ept" ? "ept" : "x86", kvm.opts.levels, ad, kvm.stats, kvm.bus);
  return { mmu: tdp, createVcpuMmu: (v) => new TdpVcpuMmu(v, tdp, mode) };
}
