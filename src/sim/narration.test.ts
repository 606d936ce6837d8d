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
    expect(chapterTitle("first host.swap_out", "host.swap_out")).toBe("The page is written to swap, for the first time");
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
    expect(chapterTitle("first kvm.exit", "kvm.exit", "npt")).toBe("A VM exit: an NPF (nested page fault), for the first time");
  });
});

describe("a live migration told as a story", () => {
  test("migration-converges.yaml: logging starts, writes fault, each round's harvest names its dirty pages, logging stops", async () => {
    const { readFileSync } = await import("node:fs");
    const { Engine } = await import("./engine.js");
    const { loadScenario } = await import("./scenario_load.js");
    const text = readFileSync(new URL("../../examples/migration-converges.yaml", import.meta.url), "utf8");
    const engine = new Engine(loadScenario(text, "migration-converges.yaml"));
    const told: { stage: string; text: string }[] = [];
    engine.machine.bus.on = true;
    engine.machine.bus.listen((e) => {
      if (e.kind === "kvm.dirty_log") told.push(narrate(e, { mmu: "ept" }));
    });
    const report = engine.run();
    const ops = told.map((t) => t.text.split(":")[0]!.split(" ").slice(0, 3).join(" "));
    expect(told.every((t) => t.stage === "migration")).toBe(true);
    expect(ops[0]).toBe("Dirty logging starts");
    expect(ops.at(-1)).toBe("Dirty logging stops");
    // One harvest per pre-copy sync, each telling the pages the round found dirty.
    const harvests = told.filter((t) => t.text.startsWith("The VMM harvests"));
    const rounds = report.migrations![0]!.iterations;
    expect(harvests.length).toBeGreaterThanOrEqual(rounds.length - 1);
    const dirty = harvests.map((t) => Number(/: ([\d,]+) pages were written/.exec(t.text)![1]!.replaceAll(",", "")));
    expect(dirty.reduce((a, b) => a + b, 0)).toBe(rounds.reduce((a, r) => a + r.dirtyPages, 0));
  });
});
