// SPDX-License-Identifier: MIT
// VM and vCPU creation on x86 (arch/x86/kvm/x86.c kvm_arch_init_vm(), kvm_arch_vcpu_create();
// mmu.c kvm_mmu_init_vm(), kvm_mmu_create()): the MMU is chosen once, when the VM is created
// (tdp_enabled), and every vCPU gets the per-vCPU MMU that goes with it.

import type { EventBus } from "../hw/events.js";
import type { KvmEventMap } from "./kvm_events.js";
import type { PhysMem } from "../hw/phys_mem.js";
import { Kvm, type KvmArch, type KvmOptions } from "./kvm.js";
import type { HostMmOps, MmuPageAllocator } from "./mmu.js";
import { ShadowMmu } from "./shadow_mmu.js";
import { ShadowSync } from "./shadow_sync.js";
import { TdpMmu } from "./tdp_mmu.js";
import { ShadowPagingVcpuMmu, TdpVcpuMmu } from "./vcpu_mmu.js";

/** kvm_create_vm(): a VM whose MMU tables come from `alloc`. */
export function kvmCreateVm(
  name: string,
  mem: PhysMem,
  host: HostMmOps,
  alloc: MmuPageAllocator,
  opts: KvmOptions,
  bus: EventBus<KvmEventMap>,
): Kvm {
  return new Kvm(name, mem, host, opts, bus, (kvm) => kvmArchInitVm(kvm, alloc));
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
    const sync = new ShadowSync(shadow);
    kvm.stats.n_max_mmu_pages = shadow.nMaxMmuPages;
    return { mmu: shadow, shadow, createVcpuMmu: (v) => new ShadowPagingVcpuMmu(v, shadow, sync) };
  }
  const ad = mode === "npt" ? true : kvm.opts.eptAd;
  const tdp = new TdpMmu(kvm.mem, alloc, mode === "ept" ? "ept" : "x86", kvm.opts.levels, ad, kvm.stats, kvm.bus);
  return { mmu: tdp, shadow: null, createVcpuMmu: (v) => new TdpVcpuMmu(v, tdp, mode) };
}
