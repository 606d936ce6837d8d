// SPDX-License-Identifier: MIT
// The native baseline: the same guest kernel and processes on bare metal, run in lockstep with
// the virtualized VM in the same invocation. Every guest-kernel call the engine makes (process
// creation, mmap, munmap, context switch, exit) is repeated on the twin, and every access runs on
// its CPUs (Machine.runAccess, the same access loop as the vCPUs'), whose MMUs walk the twin's
// own page tables natively (gva -> pa, no EPT, no host, no KVM). Its counters give the cost of
// the workload without virtualization, for the report's overhead figure.

import { NativeSwapDisk } from "./guest_swap_disk.js";
import { PAGE_SIZE } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { type TlbConfig, hwDataAccesses } from "../hw/mmu.js";
import type { MmuCore } from "../hw/mmu_core.js";
import { NativeCpu } from "../hw/native_cpu.js";
import { PhysMem } from "../hw/phys_mem.js";
import { filePageContent } from "../guest/filemap.js";
import type { GpaRange } from "../guest/frame_alloc.js";
import { GuestKernel, type MmapOptions } from "../guest/kernel.js";
import type { GuestProcess } from "../guest/process.js";

export class NativeTwin {
  readonly mem: PhysMem;
  readonly cpus: NativeCpu[];
  readonly guest: GuestKernel;
  /** The twin of each virtualized guest process. */
  private readonly twins = new Map<GuestProcess, GuestProcess>();

  constructor(
    ram: readonly GpaRange[],
    cpus: number,
    levels: 4 | 5,
    tlb: TlbConfig,
    guest: { pcid: boolean; zeroPage: boolean; swap?: number },
    mmuCore?: MmuCore,
  ) {
    // Physical memory up to the end of the highest RAM range (the PCI hole stays unused, as on the VM).
    const top = Math.max(...ram.map((r) => r[1]));
    this.mem = new PhysMem(Math.ceil(top / PAGE_SIZE) * PAGE_SIZE);
    this.cpus = Array.from(
      { length: cpus },
      () => new NativeCpu(this.mem, { levels, pcide: guest.pcid, mmu: { tlb }, ...(mmuCore ? { mmuCore } : {}) }),
    );
    // Its own quiet bus: the twin's events are not the run's story.
    const mem = this.mem;
    this.guest = new GuestKernel({
      ram,
      cpus: this.cpus,
      levels,
      bus: new EventBus(),
      zeroPage: guest.zeroPage,
      disk: { readPage: (gfn, ino, index) => void (mem.content[gfn] = filePageContent(ino, index)) },
      ...(guest.swap ? { swap: { bytes: guest.swap, disk: new NativeSwapDisk(mem) } } : {}),
    });
  }

  /** The twin of the virtualized guest process `p`. */
  twin(p: GuestProcess): GuestProcess {
    const t = this.twins.get(p);
    if (t === undefined) throw new Error(`native twin: no twin for process ${p.name}`);
    return t;
  }

  createProcess(virt: GuestProcess, cpu: number): void {
    this.twins.set(virt, this.guest.createProcess(virt.name, cpu));
  }

  mmap(virt: GuestProcess, name: string, size: number, opts: MmapOptions, gva: number): void {
    const got = this.guest.mmap(this.twin(virt), name, size, opts);
    // The same kernel making the same calls lays memory out the same way.
    if (got !== gva) throw new Error(`native twin: mmap placed ${name} at 0x${got.toString(16)}, the VM's guest at 0x${gva.toString(16)}`);
  }

  munmap(virt: GuestProcess, gva: number, size: number, cpu: number): void {
    this.guest.munmap(this.twin(virt), gva, size, cpu);
  }

  contextSwitch(virt: GuestProcess, cpu: number): void {
    this.guest.contextSwitch(this.twin(virt), cpu);
  }

  exit(virt: GuestProcess, cpu: number): void {
    this.guest.exit(this.twin(virt), cpu);
    this.twins.delete(virt);
  }

  /** Event counts for the cost model: what the workload costs without virtualization. */
  costCounts(): Record<string, number> {
    let tlbHit = 0;
    let tableRead = 0;
    let data = 0;
    for (const p of this.cpus) {
      tlbHit += p.mmu.stats.tlbHits;
      tableRead += p.mmu.stats.guestTableReads;
      data += hwDataAccesses(p.mmu.stats);
    }
    return { tlb_hit: tlbHit, table_read: tableRead, data_access: data, guest_page_fault: this.guest.stats.pgfault };
  }
}
