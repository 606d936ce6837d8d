// SPDX-License-Identifier: MIT
// The VMM's side of a VM (QEMU): guest RAM as a private anonymous mapping of the QEMU
// process, reserved lazily (or touched at start with -mem-prealloc), backed by 4 KiB pages,
// THP or a hugetlbfs pool; the memory slots that hand it to KVM, with the PCI hole below
// 4 GiB (pc_memory_init: RAM above 3 GiB moves above 4 GiB); the KVM VM it creates.

import { PAGE_1G, PAGE_2M, PAGE_SIZE } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import type { TlbConfig } from "../hw/mmu.js";
import type { MmuCore } from "../hw/mmu_core.js";
import type { HugetlbPageSize } from "../host/hugetlb.js";
import type { HostKernel } from "../host/kernel.js";
import type { Mm } from "../host/mm_types.js";
import type { Kvm, MmuMode } from "../kvm/kvm.js";
import type { KvmEventMap } from "../kvm/kvm_events.js";
import { kvmCreateVm } from "../kvm/x86.js";

export type Backing = "4k" | "thp" | "hugetlb-2m" | "hugetlb-1g";

export interface QemuVmConfig {
  name: string;
  ram: number;
  vcpus: number;
  mmu: MmuMode;
  backing: Backing;
  prealloc: boolean;
  levels: 4 | 5;
  eptAd?: boolean;
  /** The vCPUs' TLB geometry (default: Intel Golden Cove's). */
  tlb?: TlbConfig;
  /** The MMU implementation the vCPUs run on (default: the wasm core). */
  mmuCore?: MmuCore;
}

/** Where the PCI hole starts: guest RAM above this moves to 4 GiB (QEMU's q35 below_4g_mem_size, 2 GiB on q35 with >2.75 GiB; 3 GiB on i440fx). */
export const BELOW_4G_RAM = 3 * PAGE_1G;
export const HIGH_RAM_START = 4 * PAGE_1G;

/** A guest-physical range of RAM: [start, end). */
export interface GpaRange {
  start: number;
  end: number;
}

export class QemuVm {
  readonly mm: Mm;
  readonly kvm: Kvm;
  /** hva where guest RAM starts in QEMU's address space. */
  readonly ramHva: number;
  /** The guest-physical RAM ranges (what the firmware's e820 map reports). */
  readonly ranges: GpaRange[] = [];

  constructor(
    readonly host: HostKernel,
    readonly cfg: QemuVmConfig,
    bus: EventBus<KvmEventMap>,
  ) {
    this.mm = host.createProcess(`qemu-${cfg.name}`);
    const hugePage = (cfg.backing === "hugetlb-2m" ? PAGE_2M : cfg.backing === "hugetlb-1g" ? PAGE_1G : 0) as HugetlbPageSize | 0;
    if (hugePage !== 0) {
      const want = Math.ceil(cfg.ram / hugePage);
      const got = host.reserveHugetlb(hugePage, want);
      if (got < want)
        throw new RangeError(
          `${cfg.name}: the host could reserve only ${got} of ${want} hugetlb pages of ${hugePage / 2 ** 20} MiB for guest RAM`,
        );
    }
    // memory-backend-ram: one anonymous private mapping for all of guest RAM (MAP_NORESERVE).
    this.ramHva = host.mmap(this.mm, cfg.ram, {
      noreserve: true,
      ...(hugePage !== 0 ? { hugetlb: hugePage } : {}),
      ...(cfg.backing === "thp" ? { thp: "hugepage" as const } : {}),
    });
    const below = Math.min(cfg.ram, BELOW_4G_RAM);
    this.ranges.push({ start: 0, end: below });
    if (cfg.ram > below) this.ranges.push({ start: HIGH_RAM_START, end: HIGH_RAM_START + (cfg.ram - below) });

    // KVM_CREATE_VM from QEMU's process (KVM binds the VM to its mm and registers its mmu_notifier there), and the vCPUs.
    this.kvm = kvmCreateVm(
      host,
      this.mm,
      cfg.name,
      {
        mode: cfg.mmu,
        levels: cfg.levels,
        eptAd: cfg.eptAd ?? true,
        vcpus: cfg.vcpus,
        ...(cfg.tlb ? { tlb: cfg.tlb } : {}),
        ...(cfg.mmuCore ? { mmuCore: cfg.mmuCore } : {}),
      },
      bus,
    );
    let hvaOff = 0;
    this.ranges.forEach((r, id) => {
      this.kvm.addMemslot({
        id,
        baseGfn: r.start / PAGE_SIZE,
        npages: (r.end - r.start) / PAGE_SIZE,
        userspaceAddr: this.ramHva + hvaOff,
        readonly: false,
      });
      hvaOff += r.end - r.start;
    });
    if (cfg.prealloc) this.preallocate();
  }

  /** -mem-prealloc (qemu_prealloc_mem / touch_all_pages): one write per page of guest RAM. */
  private preallocate(): void {
    const step = this.cfg.backing === "hugetlb-2m" ? PAGE_2M : this.cfg.backing === "hugetlb-1g" ? PAGE_1G : PAGE_SIZE;
    for (let off = 0; off < this.cfg.ram; off += step) {
      const r = this.host.userAccess(this.mm, this.ramHva + off, true, 0);
      if (r < 0)
        throw new RangeError(
          `${this.cfg.name}: preallocating guest RAM failed at ${off / 2 ** 20} MiB: ${this.host.lastOomMessage || "the host is out of memory"}`,
        );
    }
  }

  /** The hva backing guest-physical `gpa`, or -1 if gpa is not RAM. */
  gpaToHva(gpa: number): number {
    let off = 0;
    for (const r of this.ranges) {
      if (gpa >= r.start && gpa < r.end) return this.ramHva + off + (gpa - r.start);
      off += r.end - r.start;
    }
    return -1;
  }

  /** madvise() on the hva range behind [gpa, gpa+size) (a balloon or free-page reporting). */
  madvise(gpa: number, size: number, advice: "DONTNEED" | "FREE" | "PAGEOUT" | "COLD"): void {
    for (let a = gpa; a < gpa + size; ) {
      const hva = this.gpaToHva(a);
      if (hva < 0)
        throw new RangeError(
          `${this.cfg.name}: gpa 0x${a.toString(16)} is not guest RAM (RAM: ${this.ranges.map((r) => `0x${r.start.toString(16)}-0x${r.end.toString(16)}`).join(", ")})`,
        );
      const range = this.ranges.find((r) => a >= r.start && a < r.end)!;
      const len = Math.min(gpa + size, range.end) - a;
      this.host.madvise(this.mm, hva, len, advice.toLowerCase() as "dontneed" | "free" | "pageout" | "cold");
      a += len;
    }
  }

  // ---- live migration (qemu/dirty_sync.ts) ----
  /** ram_list.dirty_memory[DIRTY_MEMORY_MIGRATION] for QEMU's own writes, by RAM page (ram_addr order); null when not migrating. */
  dirtyMemoryMigration: Uint8Array | null = null;

  /** cpu_physical_memory_set_dirty_range() for one page QEMU wrote at `gpa`. */
  markDirty(gpa: number): void {
    const d = this.dirtyMemoryMigration;
    if (d === null) return;
    const hva = this.gpaToHva(gpa);
    if (hva >= 0) d[Math.floor((hva - this.ramHva) / PAGE_SIZE)] = 1;
  }

  /** QEMU RSS: anonymous pages and zero-page mappings of the QEMU process. */
  rss(): { rss: number; rssZeroPage: number } {
    return { rss: (this.mm.rss + this.mm.hugetlbPages) * PAGE_SIZE, rssZeroPage: this.mm.rssZeroPage * PAGE_SIZE };
  }
}
