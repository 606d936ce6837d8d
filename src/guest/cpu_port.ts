// SPDX-License-Identifier: MIT
// The guest kernel's view of one CPU: the only way it touches guest-physical memory and the
// MMU. The guest does not know it is virtualized; the machine layer implements this port
// (natively: a plain frame write; under EPT/NPT: a guest-physical write through the nested
// translation, which may exit to KVM; under shadow paging: a write KVM traps because it
// write-protects guest page tables). NativeCpuPort (native_port.ts) is the test implementation.
//
// Every call is synchronous: if the write faults into the hypervisor, the implementation runs
// the exit and retries before returning, as the guest instruction would.

import type { Gfn, Gpa, Gva } from "../hw/addr.js";

export interface GuestCpuPort {
  /** CR4.PCIDE as the machine set it: the guest tags CR3 loads with PCIDs only when this is on. */
  readonly pcide: boolean;
  /** Low word of the entry the last readEntry() read. */
  readonly lo: number;
  /** High word of the entry the last readEntry() read. */
  readonly hi: number;
  /** Reads the 8-byte entry at guest-physical `gpa` (8-aligned) into `lo`/`hi`; a page never written reads as zero. */
  readEntry(gpa: Gpa): void;
  /** Writes the 8-byte entry at guest-physical `gpa`: one guest memory write (native_set_pte / set_pmd ...). */
  writeEntry(gpa: Gpa, lo: number, hi: number): void;
  /** clear_page(): writes 4 KiB of zeroes to guest frame `gfn`. */
  zeroPage(gfn: Gfn): void;
  /** copy_user_highpage(): copies guest frame `src` to `dst` (a private copy of a page-cache page). */
  copyPage(dst: Gfn, src: Gfn): void;
  /** MOV to CR3: root table frame, PCID (0 unless pcide) and bit 63 "do not flush". */
  loadCr3(rootGfn: Gfn, pcid: number, noFlush: boolean): void;
  /** INVLPG `gva` (flush_tlb_one_user). */
  invlpg(gva: Gva): void;
  /** MOV to CR3 of its current value: drops the current PCID's non-global entries (native_flush_tlb_local). */
  flushTlb(): void;
  /** A call to the VMM that changes nothing (a selftest's ucall: an OUT to an I/O port, one exit). */
  ucall(): void;
}
