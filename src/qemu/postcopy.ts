// SPDX-License-Identifier: MIT
// The destination's post-copy fault thread (migration/postcopy-ram.c postcopy_ram_fault_thread):
// it reads each userfault, asks the source for the page (postcopy_request_page), and the
// page arrives and is placed with UFFDIO_COPY (ram_load_postcopy -> postcopy_place_page).
// simplified: a page the destination already received as zeroes in pre-copy (so never backed)
// is placed with UFFDIO_ZEROPAGE at once, without a request.

import { PAGE_SIZE } from "../hw/addr.js";
import type { UserfaultfdCtx, UserfaultfdReader } from "../host/userfaultfd.js";
import type { Migration } from "./migration.js";

export class PostcopyIncoming implements UserfaultfdReader {
  constructor(private readonly mig: Migration) {}

  missing(ctx: UserfaultfdCtx, addr: number): void {
    const gpa = dstHvaToGpa(this.mig, addr);
    if (gpa < 0) return;
    if (!this.mig.requestPage(gpa / PAGE_SIZE)) ctx.zeropage(addr);
  }
}

/** The gpa behind destination hva `hva`, or -1. */
function dstHvaToGpa(mig: Migration, hva: number): number {
  let off = hva - mig.dst.ramHva;
  for (const r of mig.dst.ranges) {
    const n = r.end - r.start;
    if (off >= 0 && off < n) return r.start + off;
    off -= n;
  }
  return -1;
}
