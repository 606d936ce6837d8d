// SPDX-License-Identifier: MIT
// The story in plain chapters: the windows of the built-in story (their reasons as the
// collector gave them, in run order, under EPT and under shadow paging) fall into the plain
// chapters in the order the run meets them; titles and openings say no event kind and, under
// NPT and shadow, no "EPT".

import { describe, expect, test } from "vitest";
import { chapterTitle } from "./narration.js";
import { type ChapterId, chapterOfWindow, groupWindows, plainChapter } from "./story_chapters.js";

const win = (reason: string) => ({ reason, kind: reason.startsWith("first ") ? reason.split(" ")[1]! : "sim.step" });

/** The built-in story under EPT: the first 62 windows (the rest are steady-state samples and steps). */
const EPT_WINDOWS = [
  "first host.page_alloc (purpose pgtable)",
  "first host.process",
  "first host.mmap",
  "first host.page_alloc (purpose kvm-mmu)",
  "first kvm.exit (reason EPT_VIOLATION)",
  "first host.fault",
  "first host.page_alloc (purpose anon)",
  "first host.rmap_add",
  "first host.lru_add",
  "first kvm.faultin",
  "first kvm.spte_install",
  "first kvm.entry",
  "first guest.cr3_load",
  "first guest.process_create",
  "step 0",
  "step 1",
  "first guest.pte_write",
  "first guest.pgfault",
  "steady state at 16640 accesses",
  "steady state at 33280 accesses",
  "steady state at 49664 accesses",
  "first host.kswapd_wake",
  "first host.rmap_walk",
  "first host.notifier.clear_flush_young (young 1)",
  "first host.folio_references (decision activate)",
  "first host.activate (why reclaim)",
  "first host.lru_scan (lru inactive_anon)",
  "first host.direct_reclaim",
  "first host.notifier.clear_flush_young (young 0)",
  "first host.lru_scan (lru active_anon)",
  "first host.folio_references (decision reclaim)",
  "first host.swap_alloc",
  "first host.notifier.start (event clear)",
  "first kvm.notifier_zap",
  "first kvm.remote_tlb_flush",
  "first host.rmap_remove",
  "first host.unmap",
  "first host.notifier.end",
  "first host.swap_out",
  "first host.free",
  "first kvm.fault_retry",
  "first host.page_alloc (purpose swapin)",
  "first host.refault",
  "first host.swap_in",
  "first host.swap_free",
  "first host.swap_map (major 1)",
  "first host.kswapd_sleep",
  "first kvm.exit (reason EXTERNAL_INTERRUPT)",
  "steady state at 66304 accesses",
  "steady state at 82688 accesses",
  "step 2",
  "first host.activate (why mark_accessed)",
  "steady state at 99328 accesses",
  "steady state at 115712 accesses",
  "steady state at 132352 accesses",
  "steady state at 148736 accesses",
  "steady state at 165376 accesses",
  "steady state at 182016 accesses",
  "step 3",
  "first host.wp_reuse",
  "steady state at 198400 accesses",
  "first host.folio_references (decision keep)",
].map(win);

/** The built-in story under shadow paging (vms[0].mmu=shadow). */
const SHADOW_WINDOWS = [
  "first host.page_alloc (purpose pgtable)",
  "first host.process",
  "first host.mmap",
  "first host.fault",
  "first host.page_alloc (purpose anon)",
  "first host.rmap_add",
  "first host.lru_add",
  "first kvm.exit (reason CR_ACCESS)",
  "first kvm.entry",
  "first host.page_alloc (purpose kvm-mmu)",
  "first kvm.sp_alloc",
  "first kvm.root_load",
  "first guest.cr3_load",
  "first guest.process_create",
  "step 0",
  "step 1",
  "first kvm.exit (reason EXCEPTION_NMI)",
  "first kvm.inject_pf",
  "first kvm.pte_write",
  "first guest.pte_write",
  "first guest.pgfault",
  "first kvm.faultin",
  "first kvm.spte_install",
  "first kvm.unsync",
  "steady state at 16640 accesses",
  "steady state at 33280 accesses",
  "steady state at 49664 accesses",
  "first host.kswapd_wake",
  "first host.rmap_walk",
  "first host.notifier.clear_flush_young (young 0)",
  "first host.folio_references (decision activate)",
  "first host.activate (why reclaim)",
  "first host.notifier.clear_flush_young (young 1)",
  "first host.lru_scan (lru inactive_anon)",
  "first host.direct_reclaim",
  "first host.lru_scan (lru active_anon)",
  "first host.folio_references (decision reclaim)",
  "first host.swap_alloc",
  "first host.notifier.start (event clear)",
  "first kvm.notifier_zap",
  "first host.rmap_remove",
  "first host.unmap",
  "first host.notifier.end",
  "first host.swap_out",
  "first host.free",
  "first kvm.remote_tlb_flush",
  "first host.page_alloc (purpose swapin)",
  "first host.refault",
  "first host.swap_in",
  "first host.swap_map (major 1)",
  "first kvm.fault_retry",
  "first host.kswapd_sleep",
  "first host.swap_free",
  "first host.wp_reuse",
  "first kvm.exit (reason EXTERNAL_INTERRUPT)",
  "steady state at 66304 accesses",
  "steady state at 82688 accesses",
  "step 2",
  "first host.activate (why mark_accessed)",
  "steady state at 99328 accesses",
  "steady state at 115712 accesses",
  "steady state at 132352 accesses",
].map(win);

const RAW_KIND = /\b(host|kvm|guest|hw|qemu|sim)\.[a-z_]+/;

/** The window indices at which each chapter opens. */
function opens(g: ReturnType<typeof groupWindows>): number[] {
  return g.chapters.map((_, c) => g.of.indexOf(c));
}

describe("plain chapters of the built-in story", () => {
  test("under EPT: seven chapters in the run's order, each opened by the window the run reaches it with", () => {
    const g = groupWindows(EPT_WINDOWS, "ept");
    expect(g.chapters.map((c) => c.id)).toEqual(["lazy", "first-touch", "fault-in", "pressure", "eviction", "swap-in", "cycle"]);
    expect(opens(g).map((i) => EPT_WINDOWS[i]!.reason)).toEqual([
      "first host.page_alloc (purpose pgtable)",
      "first kvm.exit (reason EPT_VIOLATION)",
      "first host.fault",
      "first host.kswapd_wake",
      "first host.swap_alloc",
      "first host.page_alloc (purpose swapin)",
      "steady state at 66304 accesses",
    ]);
    // The guest's own work after the first fault-in stays in the fault-in chapter; the race with an invalidation, in eviction.
    expect(g.of[EPT_WINDOWS.findIndex((w) => w.reason === "first guest.pgfault")]).toBe(2);
    expect(g.of[EPT_WINDOWS.findIndex((w) => w.reason === "first kvm.fault_retry")]).toBe(4);
    // Chapters never go back.
    expect(g.of.every((c, i) => i === 0 || c >= g.of[i - 1]!)).toBe(true);
  });

  test("under shadow paging: the CR3 exit, write-protected tables, emulation and unsync chapters appear where the run meets them", () => {
    const g = groupWindows(SHADOW_WINDOWS, "shadow");
    expect(g.chapters.map((c) => c.id)).toEqual([
      "lazy",
      "shadow-cr3",
      "shadow-wp",
      "first-touch",
      "shadow-emulation",
      "fault-in",
      "shadow-unsync",
      "pressure",
      "eviction",
      "swap-in",
      "cycle",
    ]);
    expect(opens(g).map((i) => SHADOW_WINDOWS[i]!.reason)).toEqual([
      "first host.page_alloc (purpose pgtable)",
      "first kvm.exit (reason CR_ACCESS)",
      "first kvm.sp_alloc",
      "first kvm.exit (reason EXCEPTION_NMI)",
      "first kvm.pte_write",
      "first kvm.faultin",
      "first kvm.unsync",
      "first host.kswapd_wake",
      "first host.swap_alloc",
      "first host.page_alloc (purpose swapin)",
      "steady state at 66304 accesses",
    ]);
    // The host fault before any exit (the guest's boot tables written into guest RAM) is lazy allocation, not a fault-in.
    expect(g.of[SHADOW_WINDOWS.findIndex((w) => w.reason === "first host.fault")]).toBe(0);
  });

  test("stage -> chapter: each trigger's chapter", () => {
    const cases: [string, string, string, ChapterId | null][] = [
      ["first host.mmap", "host.mmap", "ept", "lazy"],
      ["first kvm.exit (reason NPF)", "kvm.exit", "npt", "first-touch"],
      ["first kvm.exit (reason EXTERNAL_INTERRUPT)", "kvm.exit", "ept", null],
      ["first guest.pte_write", "guest.pte_write", "ept", "first-touch"],
      ["first guest.pte_write", "guest.pte_write", "shadow", "shadow-emulation"],
      ["first guest.cr3_load", "guest.cr3_load", "shadow", "shadow-cr3"],
      ["first kvm.exit (reason INVLPG)", "kvm.exit", "shadow", "shadow-unsync"],
      ["first kvm.sync_page", "kvm.sync_page", "shadow", "shadow-unsync"],
      ["first host.notifier.clear_flush_young (young 1)", "host.notifier.clear_flush_young", "ept", "pressure"],
      ["first host.folio_references (decision reclaim)", "host.folio_references", "ept", "pressure"],
      ["first kvm.notifier_zap", "kvm.notifier_zap", "ept", "eviction"],
      ["first host.refault", "host.refault", "ept", "swap-in"],
      ["first kvm.dirty_log (op start)", "kvm.dirty_log", "ept", "migration"],
      ["p0 step 2: touch heap", "sim.step", "ept", null],
      ["end of the run", "", "ept", null],
    ];
    for (const [reason, kind, mmu, want] of cases) expect(chapterOfWindow(reason, kind, mmu), `${reason} ${mmu}`).toBe(want);
  });

  test("a migration run gets its chapter; a run that never swaps has no swap-in chapter", () => {
    const g = groupWindows(
      [
        "first host.mmap",
        "first kvm.exit (reason EPT_VIOLATION)",
        "first host.fault",
        "first kvm.dirty_log (op start)",
        "first host.swap_free",
      ].map(win),
      "ept",
    );
    expect(g.chapters.map((c) => c.id)).toEqual(["lazy", "first-touch", "fault-in", "migration"]);
  });
});

describe("titles and openings in plain words", () => {
  const ids: ChapterId[] = [
    "lazy",
    "first-touch",
    "fault-in",
    "shadow-cr3",
    "shadow-wp",
    "shadow-emulation",
    "shadow-unsync",
    "pressure",
    "eviction",
    "swap-in",
    "cycle",
    "migration",
  ];
  test("two sentences each, no event kind, no EPT under NPT or shadow", () => {
    for (const mmu of ["ept", "npt", "shadow"]) {
      for (const id of ids) {
        const c = plainChapter(id, mmu);
        const text = `${c.title} ${c.intro.join(" ")}`;
        expect(text, `${id} ${mmu}`).not.toMatch(RAW_KIND);
        if (mmu !== "ept") expect(text, `${id} ${mmu}`).not.toMatch(/\bEPT\b/);
        for (const s of c.intro) expect(s.match(/[.!?](\s|$)/g)?.length, `${id}: ${s}`).toBe(1);
      }
    }
    expect(plainChapter("first-touch", "npt").intro[1]).toContain("NPF (nested page fault)");
    expect(plainChapter("eviction", "shadow").intro[1]).toContain("shadow PTEs (sptes)");
  });

  test("window titles name no event kind", () => {
    for (const [reason, kind] of [...EPT_WINDOWS, ...SHADOW_WINDOWS].map((w) => [w.reason, w.kind] as const)) {
      for (const mmu of ["ept", "npt", "shadow"]) expect(chapterTitle(reason, kind, mmu), reason).not.toMatch(RAW_KIND);
    }
    expect(chapterTitle("first host.swap_out", "host.swap_out")).toBe("The page is written to swap, for the first time");
    expect(chapterTitle("first host.page_alloc (purpose pgtable)", "host.page_alloc")).toBe(
      "The buddy allocator hands out a page (for a page table), for the first time",
    );
    expect(chapterTitle("first kvm.exit (reason NPF)", "kvm.exit", "npt")).toBe(
      "A VM exit: an NPF (nested page fault), for the first time",
    );
    expect(chapterTitle("first kvm.exit (reason CR_ACCESS)", "kvm.exit", "shadow")).toBe(
      "A VM exit (as the guest loads CR3), for the first time",
    );
  });
});
