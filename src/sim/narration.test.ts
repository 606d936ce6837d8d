// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import type { SimEvent } from "../hw/events.js";
import { CORRECTIONS, chapterTitle, guestNeverHears, narrate, tableIndices, tablePath } from "./narration.js";

const ev = (kind: string, fields: Record<string, number | string>): SimEvent => ({ kind, t: 0, ...fields });

describe("narration", () => {
  test("table indices are the address's 9-bit fields, top level first", () => {
    expect(tableIndices(0x7f12_3456_7000, 4)).toEqual([254, 72, 418, 359]);
    expect(tableIndices(0x1000, 4)).toEqual([0, 0, 0, 1]);
    expect(tablePath(ev("kvm.spte_install", { gfn: 259, level: 1, pfn: 12 }))).toBe(
      "EPT entries for gfn 0x103: PML4E[0] > PDPTE[0] > PDE[0] > PTE[259]",
    );
    expect(tablePath(ev("kvm.spte_install", { gfn: 259, level: 1, pfn: 12 }), { mmu: "npt" })).toMatch(/^NPT/);
    expect(tablePath(ev("host.fault", { mm: 1, hva: 0x1000, write: 1 }))).toMatch(/^QEMU's host tables .*PGD\[0\]/);
  });

  test("a 5-level guest's paths have five indices, bits 56:48 first", () => {
    expect(tableIndices(0x0002_0000_0000_1000, 5)).toEqual([2, 0, 0, 0, 1]);
    expect(tablePath(ev("guest.pte_write", { gva: 0x0002_0000_0000_1000 }), { mmu: "ept", levels: 5 })).toBe(
      "guest tables for gva 0x2000000001000: PML5E[2] > PML4E[0] > PDPTE[0] > PDE[0] > PTE[1]",
    );
    expect(tablePath(ev("kvm.spte_install", { gfn: 259, level: 1, pfn: 12 }), { mmu: "ept", levels: 5 })).toBe(
      "EPT entries for gfn 0x103: PML5E[0] > PML4E[0] > PDPTE[0] > PDE[0] > PTE[259]",
    );
  });

  test("the corrections attach where SEED-PATHS says", () => {
    expect(narrate(ev("kvm.notifier_zap", { vm: "vm0", start: 0, end: 4096, zapped: 1 })).correction).toBe(guestNeverHears("ept"));
    expect(narrate(ev("host.notifier.start", { mm: 1, start: 0, end: 4096, event: "clear" })).correction).toBe(CORRECTIONS.notifier);
    expect(narrate(ev("kvm.faultin", { vcpu: 0, gfn: 1, hva: 0, pfn: 2, writable: 1 })).correction).toBe(CORRECTIONS.noNotifierOnFaultIn);
    expect(narrate(ev("kvm.exit", { vcpu: 0, reason: "EPT_VIOLATION", gpa: 0, error: 2 })).correction).toContain("24 table reads");
  });

  test("shadow paging changes what the guest's own steps cost", () => {
    const pf = ev("guest.pgfault", { pid: 1, gva: 0x1000, errorCode: 6, result: "fixed" });
    expect(narrate(pf).text).toContain("needs no exit");
    expect(narrate(pf, { mmu: "shadow" }).text).toContain("reflected");
    expect(narrate(ev("kvm.exit", { vcpu: 0, reason: "CR_ACCESS", gpa: 0, error: 0 }), { mmu: "shadow" }).stage).toBe("fault-in");
    expect(narrate(ev("kvm.exit", { vcpu: 1, reason: "EXTERNAL_INTERRUPT" }), { mmu: "ept" }).text).toContain("KVM_REQ_TLB_FLUSH");
    expect(chapterTitle("first host.swap_out", "host.swap_out")).toBe("first host.swap_out: the page is written to swap");
  });
});

describe("narration under each MMU", () => {
  const events = [
    ev("kvm.exit", { vcpu: 0, reason: "EXCEPTION_NMI", gpa: 0, error: 0 }),
    ev("kvm.faultin", { vcpu: 0, gfn: 1, hva: 0, pfn: 2, writable: 1 }),
    ev("kvm.spte_install", { gfn: 1, level: 1, pfn: 2 }),
    ev("kvm.notifier_zap", { vm: "vm0", start: 0, end: 4096, zapped: 1 }),
    ev("host.notifier.clear_flush_young", { mm: 1, start: 0, end: 4096, young: 1 }),
  ];
  test("under shadow paging and NPT no narration, function or chapter says EPT", () => {
    for (const mmu of ["shadow", "npt"]) {
      for (const e of events) {
        const n = narrate(e, { mmu });
        expect(
          `${n.text} ${n.mirrors} ${n.correction ?? ""} ${chapterTitle(`first ${e.kind}`, e.kind, mmu)}`,
          `${mmu} ${e.kind}`,
        ).not.toMatch(/EPT/);
      }
    }
  });
  test("the shadow fault is narrated through paging_tmpl.h, not the TDP MMU", () => {
    const s = narrate(ev("kvm.spte_install", { gfn: 1, level: 1, pfn: 2 }), { mmu: "shadow" });
    expect(s.mirrors).toBe("FNAME(page_fault) -> FNAME(fetch) -> mmu_set_spte() -> make_spte()");
    expect(s.mirrors).not.toMatch(/tdp/);
    expect(narrate(ev("kvm.faultin", { vcpu: 0, gfn: 1, hva: 0, pfn: 2, writable: 1 }), { mmu: "shadow" }).mirrors).toMatch(
      /^FNAME\(page_fault\) -> FNAME\(walk_addr\)/,
    );
    expect(narrate(ev("kvm.spte_install", { gfn: 1, level: 1, pfn: 2 }), { mmu: "ept" }).mirrors).toContain("kvm_tdp_mmu_map()");
    expect(chapterTitle("first kvm.exit", "kvm.exit", "npt")).toBe("first kvm.exit: a VM exit (NPF (nested page fault))");
  });
});
