// SPDX-License-Identifier: MIT
// One guest page over the migration stream (migration/ram.c): the source reads it through its
// own mapping of guest RAM (a host fault or swap-in there if needed); a page of zeroes goes as
// a header and one byte (save_zero_page), any other as a header and 4 KiB (ram_save_page);
// the destination writes it into its own guest RAM (ram_load_precopy: a host fault on its mm)
// or, in post-copy, places it with UFFDIO_COPY / UFFDIO_ZEROPAGE.
// simplified: the source and destination QEMU run on the same host (migrate to localhost);
// no multifd, compression, XBZRLE or block-name headers.

import { PAGE_SIZE } from "../hw/addr.js";
import type { UserfaultfdCtx } from "../host/userfaultfd.js";
import type { QemuVm } from "./vm.js";

/** Bytes on the wire of a page header (save_page_header: be64 offset | flags). */
export const PAGE_HEADER_BYTES = 8;
/** A zero page: the header and one byte (save_zero_page). */
export const ZERO_PAGE_BYTES = PAGE_HEADER_BYTES + 1;
/** A normal page: the header and the page (ram_save_page). */
export const NORMAL_PAGE_BYTES = PAGE_HEADER_BYTES + PAGE_SIZE;

/**
 * The source's frame of guest page `gfn` after reading it through QEMU's mapping, or -1 if the
 * page reads as zeroes without being backed (never touched, or mapped to the zero page).
 */
export function readSourcePage(src: QemuVm, gfn: number): number {
  const hva = src.gpaToHva(gfn * PAGE_SIZE);
  const p = src.host.probe(src.mm, hva);
  if (p.state === "none" || (p.state === "present" && p.zeroPage)) return -1;
  if (p.state === "present") return p.pfn;
  const r = src.host.getUserPages(src.mm, hva, false); // a swapped-out page is read back first
  if (!r.ok) throw new RangeError(`${src.cfg.name}: migration could not read gfn 0x${gfn.toString(16)}: ${r.error}`);
  return r.pfn;
}

/** buffer_is_zero() on a frame: content tag 0 and no table words. */
export function frameIsZero(src: QemuVm, pfn: number): boolean {
  return pfn < 0 || (src.host.mem.content[pfn] === 0 && !src.host.mem.isTable(pfn));
}

/** Sends gfn and loads it into the destination's RAM (ram_load_precopy); returns the bytes it took on the wire. */
export function sendPagePrecopy(src: QemuVm, dst: QemuVm, gfn: number): number {
  const pfn = readSourcePage(src, gfn);
  const hva = dst.gpaToHva(gfn * PAGE_SIZE);
  if (frameIsZero(src, pfn)) {
    // ram_handle_zero(): memset only if the destination's page is not zero already.
    const p = dst.host.probe(dst.mm, hva);
    if (p.state !== "none" && !p.zeroPage) {
      const d = dst.host.getUserPages(dst.mm, hva, true);
      if (d.ok && !frameIsZero(dst, d.pfn)) dst.host.mem.zeroFrame(d.pfn);
    }
    return ZERO_PAGE_BYTES;
  }
  const d = dst.host.getUserPages(dst.mm, hva, true);
  if (!d.ok) throw new RangeError(`${dst.cfg.name}: the destination could not back gfn 0x${gfn.toString(16)}: ${d.error}`);
  dst.host.mem.copyFrame(d.pfn, pfn);
  return NORMAL_PAGE_BYTES;
}

/** Sends gfn to a post-copy destination, placing it atomically (postcopy_place_page / _zero); bytes on the wire. */
export function sendPagePostcopy(src: QemuVm, dst: QemuVm, uffd: UserfaultfdCtx, gfn: number): number {
  const pfn = readSourcePage(src, gfn);
  const hva = dst.gpaToHva(gfn * PAGE_SIZE);
  if (frameIsZero(src, pfn)) {
    uffd.zeropage(hva);
    return ZERO_PAGE_BYTES;
  }
  uffd.copy(hva, pfn);
  return NORMAL_PAGE_BYTES;
}
