// SPDX-License-Identifier: MIT
// The guest kernel's CPU port on a KVM vCPU. Under EPT/NPT its page-table reads and writes
// and its clear_page() are guest-physical accesses that go through EPT/NPT like any other (and
// may exit to KVM, which faults the host page in); CR3 loads and INVLPG run on the vCPU's MMU
// without an exit, as the guest owns them. Under shadow paging a write to a frame KVM
// write-protects traps (KVM unsyncs the frame, or emulates the write), any other write is a
// plain guest memory write, and every CR3 load and INVLPG exits to KVM.
//
// simplified: under shadow paging the guest kernel's own reads of guest RAM never exit (its direct map is taken as present).

import { PAGE_SIZE } from "../hw/addr.js";
import type { Gfn, Gpa, Gva } from "../hw/addr.js";
import type { GuestCpuPort } from "../guest/cpu_port.js";
import type { VcpuMmu } from "../kvm/mmu.js";
import { KERNEL_WRITE_EMULATED, type Vcpu } from "../kvm/kvm.js";

/** The VM cannot go on: the host could not back guest memory (OOM), or KVM hit a dead end. */
export class VmFailure extends Error {}

export class VcpuPort implements GuestCpuPort {
  lo = 0;
  hi = 0;
  /** Guest-physical page-table reads and writes and page clears made through this port. */
  tableReads = 0;
  tableWrites = 0;
  pageClears = 0;
  pageCopies = 0;
  private readonly mmu: VcpuMmu;

  constructor(
    readonly vcpu: Vcpu,
    /** Told of every frame the guest clears (the data checker forgets what it held). */
    private readonly onClear: (gfn: number) => void,
    /** Told of every frame the guest copies (the data checker expects the source's data in it). */
    private readonly onCopy: (dst: number, src: number) => void = () => {},
    /** CR4.PCIDE: off with the guest's pcid option off (Linux's "nopcid" leaves CR4.PCIDE clear). */
    readonly pcide = true,
  ) {
    vcpu.mmu.pcide = pcide;
    this.mmu = vcpu.archMmu;
  }

  private check(r: number): number {
    if (r < 0 && r !== KERNEL_WRITE_EMULATED) throw new VmFailure(`vCPU ${this.vcpu.id}: ${this.vcpu.error}`);
    return r;
  }

  readEntry(gpa: Gpa): void {
    this.tableReads++;
    const f = this.check(this.mmu.readTable(gpa));
    const mem = this.vcpu.kvm.mem;
    if (mem.isTable(f)) {
      const idx = (gpa % PAGE_SIZE) / 8;
      this.lo = mem.readLo(f, idx);
      this.hi = mem.readHi(f, idx);
    } else {
      // A page that never held a table (zero page, fresh page) reads as zeroes.
      this.lo = 0;
      this.hi = 0;
    }
  }

  writeEntry(gpa: Gpa, lo: number, hi: number): void {
    this.tableWrites++;
    const f = this.check(this.mmu.writeTable(gpa, true, lo, hi));
    if (f === KERNEL_WRITE_EMULATED) return;
    const mem = this.vcpu.kvm.mem;
    if (!mem.isTable(f)) mem.allocTable(f);
    mem.writeEntry(f, (gpa % PAGE_SIZE) / 8, lo, hi);
  }

  zeroPage(gfn: Gfn): void {
    this.pageClears++;
    const f = this.check(this.mmu.writeTable(gfn * PAGE_SIZE, false, 0, 0));
    this.vcpu.kvm.mem.zeroFrame(f);
    this.onClear(gfn);
  }

  copyPage(dst: Gfn, src: Gfn): void {
    this.pageCopies++;
    // Like the guest's copy loop: each side is a guest-physical access through EPT/NPT (or the direct map under shadow paging).
    const fd = this.check(this.mmu.writeTable(dst * PAGE_SIZE, false, 0, 0));
    const fs = this.check(this.mmu.readTable(src * PAGE_SIZE));
    this.vcpu.kvm.mem.copyFrame(fd, fs);
    this.onCopy(dst, src);
  }

  loadCr3(rootGfn: Gfn, pcid: number, noFlush: boolean): void {
    this.check(this.mmu.setCr3(rootGfn, pcid, noFlush));
  }

  invlpg(gva: Gva): void {
    this.check(this.mmu.invlpg(gva));
  }

  flushTlb(): void {
    this.check(this.mmu.flushTlb());
  }

  ucall(): void {
    if (this.vcpu.ioExit() < 0) throw new VmFailure(`vCPU ${this.vcpu.id}: ${this.vcpu.error}`);
  }
}
