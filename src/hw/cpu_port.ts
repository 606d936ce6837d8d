// SPDX-License-Identifier: MIT
// One CPU as software sees it. `CpuPort` is what a kernel does to its CPU: the only way it
// touches physical memory and the MMU (the guest kernel does not know whether it is
// virtualized). `Cpu` adds what the running program does: its data accesses, which the
// machine drives with one loop (sim/machine.ts) whatever the CPU is.
//
// Two CPUs implement it: bare metal (NativeCpu, native_cpu.ts: an entry write is a plain frame
// write) and a KVM vCPU (kvm/vcpu.ts: under EPT/NPT a guest-physical write through the nested
// translation, which may exit to KVM; under shadow paging a write KVM traps because it
// write-protects guest page tables). Every call is synchronous: if it exits to the hypervisor,
// the implementation runs the exit and retries before returning, as the instruction would.

import type { Gfn, Gpa, Gva } from "./addr.js";
import type { HwMmu } from "./mmu_core.js";

export interface CpuPort {
  /** CR4.PCIDE as the machine set it: the kernel tags CR3 loads with PCIDs only when this is on. */
  readonly pcide: boolean;
  /** Low word of the entry the last readEntry() read. */
  readonly lo: number;
  /** High word of the entry the last readEntry() read. */
  readonly hi: number;
  /** Reads the 8-byte entry at physical `gpa` (8-aligned) into `lo`/`hi`; a page never written reads as zero. */
  readEntry(gpa: Gpa): void;
  /** Writes the 8-byte entry at physical `gpa`: one memory write (native_set_pte / set_pmd ...). */
  writeEntry(gpa: Gpa, lo: number, hi: number): void;
  /** clear_page(): writes 4 KiB of zeroes to frame `gfn`. */
  zeroPage(gfn: Gfn): void;
  /** copy_user_highpage(): copies frame `src` to `dst` (a private copy of a page-cache page). */
  copyPage(dst: Gfn, src: Gfn): void;
  /** MOV to CR3: root table frame, PCID (0 unless pcide) and bit 63 "do not flush". */
  loadCr3(rootGfn: Gfn, pcid: number, noFlush: boolean): void;
  /** INVLPG `gva` (flush_tlb_one_user). */
  invlpg(gva: Gva): void;
  /** MOV to CR3 of its current value: drops the current PCID's non-global entries (native_flush_tlb_local). */
  flushTlb(): void;
  /** A call to the VMM that changes nothing (a selftest's ucall: an OUT to an I/O port, one exit); nothing on bare metal. */
  ucall(): void;
}

export interface Cpu extends CpuPort {
  /** The hardware MMU: after access(), `hpa` (XLATE_OK) or `errorCode` (XLATE_GUEST_PF) say how it went. */
  readonly mmu: HwMmu;
  /** Why the last access() could not go on. */
  readonly error: string;
  /**
   * A data access by the running program to `gva` (`acc`: ACC_* bits): XLATE_OK, XLATE_GUEST_PF
   * (the kernel's own #PF, not handled here), or any other value when the CPU cannot go on.
   */
  access(gva: Gva, acc: number): number;
}
