// SPDX-License-Identifier: MIT
// The event kinds the guest kernel emits, declared once: a sentence, the kernel function it
// stands for, and the fields.

import type { EventDecls, EventMapOf } from "../hw/events.js";

export const GUEST_EVENTS = {
  "guest.pgfault": {
    description: "The guest kernel handled a page fault.",
    mirrors: "do_user_addr_fault() / handle_mm_fault()",
    fields: { cpu: "number", pid: "number", gva: "number", errorCode: "number", result: "string" },
  },
  "guest.pte_write": {
    description: "The guest wrote one page-table entry (mapping gva) into guest RAM.",
    mirrors: "set_pte_at() / pmd_populate() / pte_clear()",
    fields: { pid: "number", gpa: "number", level: "number", gva: "number", lo: "number", hi: "number" },
  },
  "guest.cr3_load": {
    description: "The guest loaded CR3 on a CPU (gfn: the root table).",
    mirrors: "switch_mm_irqs_off() -> load_new_mm_cr3()",
    fields: { cpu: "number", pid: "number", gfn: "number", pcid: "number", noFlush: "number" },
  },
  "guest.invlpg": {
    description: "The guest invalidated one page in a CPU's TLB.",
    mirrors: "flush_tlb_one_user()",
    fields: { cpu: "number", gva: "number" },
  },
  "guest.tlb_flush": {
    description: "The guest flushed a CPU's TLB for the current PCID.",
    mirrors: "flush_tlb_local()",
    fields: { cpu: "number", pid: "number" },
  },
  "guest.process_create": {
    description: "A guest process was created (gfn: its PGD).",
    mirrors: "mm_alloc() / pgd_alloc()",
    fields: { pid: "number", gfn: "number", name: "string" },
  },
  "guest.process_exit": {
    description: "A guest process exited and freed its memory (freed: pages).",
    mirrors: "exit_mmap() / pgd_free()",
    fields: { pid: "number", freed: "number" },
  },
  "guest.page_cache_read": {
    description: "The guest read a file page from its virtual disk into a new page-cache frame.",
    mirrors: "filemap_fault() -> filemap_read_folio()",
    fields: { ino: "number", file: "string", index: "number", gfn: "number" },
  },
  "guest.page_cache_drop": {
    description: "Direct reclaim dropped a clean page-cache page (unmapping it first).",
    mirrors: "shrink_folio_list() -> try_to_unmap() / __remove_mapping()",
    fields: { ino: "number", file: "string", index: "number", gfn: "number" },
  },
  // ---- guest reclaim and swap (vmscan.ts, swap_state.ts)
  "guest.swap_out": {
    description: "Guest reclaim writes an unmapped anonymous page to its swap slot (QEMU then reads the frame at its hva).",
    mirrors: "shrink_folio_list() -> pageout() -> swap_writepage()",
    fields: { pid: "number", gva: "number", gfn: "number", slot: "number" },
  },
  "guest.swap_in": {
    description: "A guest fault on a swap PTE read the page back into a new frame and mapped it.",
    mirrors: "do_swap_page() -> swap_read_folio()",
    fields: { pid: "number", gva: "number", gfn: "number", slot: "number" },
  },
  "guest.kswapd_wake": {
    description: "The guest's free pages fell below its low watermark: its kswapd is woken.",
    mirrors: "wakeup_kswapd()",
    fields: { free: "number" },
  },
  "guest.kswapd_sleep": {
    description: "The guest's kswapd reached the high watermark (or reclaimed nothing) and sleeps.",
    mirrors: "kswapd_try_to_sleep()",
    fields: { free: "number" },
  },
} as const satisfies EventDecls;

export type GuestEventMap = EventMapOf<typeof GUEST_EVENTS>;
