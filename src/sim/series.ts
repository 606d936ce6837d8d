// SPDX-License-Identifier: MIT
// The report's time series: a point every `sampleEvery` accesses, with gauges (RSS, free
// memory, swap used) at the point and counts (faults, exits, swap traffic) since the previous one.

import type { Machine } from "./machine.js";
import type { SeriesPoint } from "./report.js";

export class TimeSeries {
  readonly points: SeriesPoint[] = [];
  private last: Record<string, number> = {};

  /** One point at `accesses` guest accesses and `cycles` cycles of the cost model. */
  sample(m: Machine, accesses: number, cycles: number): void {
    const vmstat = m.host.vmstat();
    let exits = 0;
    let pfTaken = 0;
    let rss = 0;
    for (const vm of m.vms) {
      // live migration: the source QEMU's vCPUs still count after the switch-over
      for (const v of vm.retired.length === 0 ? vm.qemu.kvm.vcpus : [...vm.retired, vm.qemu].flatMap((q) => q.kvm.vcpus)) {
        exits += v.stats.exits;
        pfTaken += v.stats.pf_taken;
      }
      rss += vm.qemu.rss().rss;
    }
    const now = { pgfault: vmstat.pgfault ?? 0, exits, pf_taken: pfTaken, pswpin: vmstat.pswpin ?? 0, pswpout: vmstat.pswpout ?? 0 };
    const prev = this.last;
    this.points.push({
      accesses,
      cycles,
      rssBytes: rss,
      freeBytes: (vmstat.nr_free_pages ?? 0) * 4096,
      swapUsedBytes: m.host.swap ? (m.host.swap.totalSwapPages - m.host.swap.nrSwapPages) * 4096 : 0,
      faults: now.pgfault - (prev.pgfault ?? 0),
      exits: now.exits - (prev.exits ?? 0),
      pfTaken: now.pf_taken - (prev.pf_taken ?? 0),
      swapIns: now.pswpin - (prev.pswpin ?? 0),
      swapOuts: now.pswpout - (prev.pswpout ?? 0),
      ...(m.vms.some((vm) => vm.balloon !== null) ? balloonGauges(m) : {}),
    });
    this.last = now;
  }
}

/** The guests' free memory and the balloons' size, in bytes. */
function balloonGauges(m: Machine): { guestFreeBytes: number; balloonBytes: number } {
  let guestFree = 0;
  let balloon = 0;
  for (const vm of m.vms) {
    if (vm.kernel === null) continue;
    guestFree += vm.kernel.alloc.nrFree * 4096;
    balloon += (vm.balloon?.driver.numPages ?? 0) * 4096;
  }
  return { guestFreeBytes: guestFree, balloonBytes: balloon };
}
