// SPDX-License-Identifier: MIT
// The event counts the cost model (cost.ts) prices, read from the machine's counters.

import { hwDataAccesses } from "../hw/mmu_stats.js";
import type { Machine, VmState } from "./machine.js";

/** One VM's events for the cost model: its vCPUs' hardware and KVM counters, its guest's faults, and the host faults and swap-ins on QEMU's mm. */
export function vmCostCounts(vm: VmState): Record<string, number> {
  const c = {
    tlb_hit: 0,
    table_read: 0,
    data_access: 0,
    vm_exit: 0,
    kvm_page_fault: 0,
    host_fault: 0,
    swap_in: 0,
    tlb_flush: 0,
    gpte_access: 0,
    emulate: 0,
    guest_page_fault: 0,
  };
  for (const v of vm.retired.length === 0 ? vm.qemu.kvm.vcpus : [...vm.retired, vm.qemu].flatMap((q) => q.kvm.vcpus)) {
    const h = v.mmu.stats;
    c.tlb_hit += h.tlbHits;
    c.table_read += h.guestTableReads + h.nestedTableReads;
    c.data_access += hwDataAccesses(h);
    c.vm_exit += v.stats.exits;
    c.kvm_page_fault += v.stats.pf_taken;
    c.tlb_flush += v.stats.tlb_flush;
    c.gpte_access += v.stats.gpte_reads + v.stats.gpte_writes;
    c.emulate += v.stats.pf_emulate;
  }
  for (const q of [...vm.retired, vm.qemu]) {
    c.host_fault += q.mm.minFlt + q.mm.majFlt;
    c.swap_in += q.mm.majFlt;
  }
  // host.zswap: major faults served by zswap or the zeromap read no device.
  const z = vm.qemu.host.zswap;
  if (z !== null) {
    let hits = 0;
    let zero = 0;
    for (const q of [...vm.retired, vm.qemu]) {
      hits += z.loadsByMm[q.mm.id] ?? 0;
      zero += z.zeroLoadsByMm[q.mm.id] ?? 0;
    }
    c.swap_in -= hits + zero;
    (c as Record<string, number>)[`zswap_${z.cfg.compressor}_decompress`] = hits;
  }
  c.guest_page_fault = vm.kernel?.stats.pgfault ?? 0;
  return c;
}

/** Event counts for the cost model over the whole machine: the VMs' events, and the host's faults and swap traffic. */
export function costCounts(m: Machine): Record<string, number> {
  const out: Record<string, number> = {};
  for (const vm of m.vms) for (const [k, v] of Object.entries(vmCostCounts(vm))) out[k] = (out[k] ?? 0) + v;
  const vmstat = m.host.vmstat();
  out.host_fault = vmstat.pgfault ?? 0;
  out.swap_in = vmstat.pswpin ?? 0;
  out.swap_out = vmstat.pswpout ?? 0;
  if (m.scenario.host.ksm) out.ksm_scan_page = m.host.ksm.stats.pages_scanned;
  const z = m.host.zswap;
  if (z !== null) {
    // Compressed: every store and every store that then found no pool page; decompressed: hits and writebacks.
    out[`zswap_${z.cfg.compressor}_compress`] = z.stats.zswpout + z.stats.reject_alloc_fail;
    out[`zswap_${z.cfg.compressor}_decompress`] = z.stats.zswpin + z.stats.zswpwb;
  }
  return out;
}
