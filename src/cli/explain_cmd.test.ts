// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

/** The chain headings and each step's "layer: kernel function [kind]" line, in order. */
function steps(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => /^\d\. /.test(l) || /^ +\d+\. /.test(l))
    .map((l) => l.trim().replace(/^(\d+)\. (.*?): .*\[(.*)\]$/, "$1 $2 $3"));
}

describe("memvirt explain", () => {
  test("the built-in story: the first fault-in, the eviction of the first page read back from swap, and its re-fault", async () => {
    const r = await runCli(["explain"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(steps(r.stdout)).toEqual([
      "1. The first fault-in (SEED-PATHS path 4)",
      "1 KVM kvm.exit",
      "2 host mm host.fault",
      "3 host mm host.page_alloc",
      "4 host mm host.page_alloc",
      "5 host mm host.page_alloc",
      "6 host mm host.page_alloc",
      "7 host mm host.rmap_add",
      "8 host mm host.lru_add",
      "9 KVM kvm.faultin",
      "10 host mm host.page_alloc",
      "11 host mm host.page_alloc",
      "12 host mm host.page_alloc",
      "13 KVM kvm.spte_install",
      "14 KVM kvm.entry",
      "2. Reclaim evicts the page at hva 0x7fffd7f02000 (path 5)",
      "1 host mm host.direct_reclaim",
      "2 host mm host.rmap_walk",
      "3 host mm host.notifier.clear_flush_young",
      "4 host mm host.folio_references",
      "5 host mm host.swap_alloc",
      "6 host mm host.rmap_walk",
      "7 host mm host.notifier.start",
      "8 KVM kvm.notifier_zap",
      "9 KVM kvm.remote_tlb_flush",
      "10 host mm host.rmap_remove",
      "11 host mm host.unmap",
      "12 host mm host.notifier.end",
      "13 host mm host.swap_out",
      "14 host mm host.free",
      "3. The guest touches it again: the re-fault (paths 5.7, 6)",
      "1 KVM kvm.exit",
      "2 host mm host.fault",
      "3 host mm host.page_alloc",
      "4 host mm host.refault",
      "5 host mm host.lru_add",
      "6 host mm host.swap_in",
      "7 host mm host.swap_free",
      "8 host mm host.rmap_add",
      "9 host mm host.swap_map",
      "10 KVM kvm.faultin",
      "11 KVM kvm.spte_install",
      "12 KVM kvm.entry",
    ]);
    // The kernel functions, in the order the chains call them.
    const fns = [
      "handle_ept_violation() -> kvm_mmu_page_fault()",
      "handle_mm_fault()",
      "hva_to_pfn() (get_user_pages)",
      "make_spte()",
      "__alloc_pages_direct_reclaim()",
      "mmu_notifier_clear_flush_young()",
      "folio_check_references()",
      "add_to_swap()",
      "mmu_notifier_invalidate_range_start()",
      "kvm_unmap_gfn_range()",
      "kvm_flush_remote_tlbs()",
      "try_to_unmap_one()",
      "mmu_notifier_invalidate_range_end()",
      "swap_writepage()",
      "workingset_refault()",
      "swap_read_folio()",
      "do_swap_page()",
    ];
    let at = 0;
    for (const f of fns) {
      const i = r.stdout.indexOf(f, at);
      expect(i, f).toBeGreaterThan(at - 1);
      at = i;
    }
    // Addresses in hex: the first fault's gpa, its frame, the evicted page's slot.
    expect(r.stdout).toContain("no EPT entry for gpa 0x100000");
    expect(r.stdout).toContain("EPT entries for gpa 0x100000: PML4E[0] > PDPTE[0] > PDE[0] > PTE[256]");
    expect(r.stdout).toContain("Swap slot 3 is read back into frame 0x48");
    expect(r.stdout.includes("\u001b")).toBe(false);
  }, 60_000);

  test("a bad scenario path: exit 2, one line, nothing on stdout", async () => {
    const r = await runCli(["explain", "/nonexistent.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
