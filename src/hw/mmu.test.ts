// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, TranslateMachine, type TranslateOptions } from "./scratch_machine.js";
import { PAGE_SIZE } from "./addr.js";
import { EPT_A, EPT_D, EPT_W, makeEptPte } from "./ept_pte.js";
import {
  ACC_FETCH,
  ACC_READ,
  ACC_USER,
  ACC_WRITE,
  EPTQ_GLA_FINAL,
  EPTQ_GLA_VALID,
  EPTQ_READABLE,
  EPTQ_WRITABLE,
  EPTQ_WRITE,
  Mmu,
  NPF_FINAL,
  XLATE_EPT_MISCONFIG,
  XLATE_EPT_VIOLATION,
  XLATE_GUEST_PF,
  XLATE_NPF,
  XLATE_OK,
  defaultMmuConfig,
  hwDataAccesses,
} from "./mmu.js";
import { PhysMem } from "./phys_mem.js";
import { PFERR_FETCH, PFERR_PRESENT, PFERR_USER, PFERR_WRITE, PTE_A, PTE_D, PTE_G, PTE_RW, PTE_US, makeX86Pte } from "./x86_pte.js";

const GVA = DEFAULT_TRANSLATE.gva;

function machine(o: Partial<TranslateOptions> = {}) {
  return new TranslateMachine({ ...DEFAULT_TRANSLATE, caches: true, ...o });
}

/** Frame, index and words of the guest leaf entry (level 1) for `gva`, found with a logged probe walk. */
function guestLeaf(m: TranslateMachine, gva = GVA) {
  const walk = stepsOf(m, gva);
  const leaf = walk.filter((s) => s.kind === 0).at(-1)!;
  const pfn = Math.floor(leaf.hpa / PAGE_SIZE);
  const idx = (leaf.hpa % PAGE_SIZE) / 8;
  return { pfn, idx, lo: () => m.mem.readLo(pfn, idx), hi: () => m.mem.readHi(pfn, idx) };
}

/** Entry addresses read by a fresh, cache-less machine of the same shape (a reference walk). */
function stepsOf(m: TranslateMachine, gva: number) {
  const probe = new Mmu(m.mem, defaultMmuConfig(m.opts.paging, { psc: null, nestedPsc: null, nestedTlb: null, tlb: null }));
  if (m.opts.paging !== "native") probe.setNestedContext(1, m.mmu.nestedRoot);
  probe.loadCr3(m.mmu.cr3Frame);
  const log: { kind: number; hpa: number; level: number }[] = [];
  probe.log = { push: (kind: number, level: number, _f: number, hpa: number) => log.push({ kind, hpa, level }) } as never;
  probe.probe(gva, ACC_READ);
  return log;
}

function nestedLeafOf(m: TranslateMachine, gva = GVA) {
  const walk = stepsOf(m, gva).filter((s) => s.kind === 1);
  const leaf = walk.at(-1)!;
  const pfn = Math.floor(leaf.hpa / PAGE_SIZE);
  const idx = (leaf.hpa % PAGE_SIZE) / 8;
  return { pfn, idx, lo: () => m.mem.readLo(pfn, idx), hi: () => m.mem.readHi(pfn, idx) };
}

describe("TLB", () => {
  test("a second access to the same page is a TLB hit costing one reference", () => {
    const m = machine();
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_OK);
    const reads = m.mmu.stats.guestTableReads + m.mmu.stats.nestedTableReads;
    expect(m.mmu.access(GVA + 8, ACC_USER)).toBe(XLATE_OK);
    expect(m.mmu.stats.tlbHits).toBe(1);
    expect(m.mmu.stats.guestTableReads + m.mmu.stats.nestedTableReads).toBe(reads);
    expect(hwDataAccesses(m.mmu.stats)).toBe(2);
  });

  test("INVLPG of the page makes the next access walk; INVLPG of another page does not", () => {
    const m = machine();
    m.mmu.access(GVA, ACC_USER);
    m.mmu.invlpg(GVA + 5 * PAGE_SIZE);
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(m.mmu.stats.tlbHits).toBe(1);
    m.mmu.invlpg(GVA);
    const walks = m.mmu.stats.walks;
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_OK);
    expect(m.mmu.stats.walks).toBe(walks + 1);
    expect(m.mmu.stats.tlbHits).toBe(1);
  });

  test("a CR3 load without PCID keeps global pages only", () => {
    const m = machine({ paging: "native" });
    const leaf = guestLeaf(m);
    m.mmu.access(GVA, ACC_USER);
    expect(m.mmu.tlbLiveEntries()).toBe(1);
    m.mmu.loadCr3(m.mmu.cr3Frame);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    // Make the page global and try again.
    m.mem.writeEntry(leaf.pfn, leaf.idx, leaf.lo() | PTE_G, leaf.hi());
    m.mmu.access(GVA, ACC_USER);
    m.mmu.loadCr3(m.mmu.cr3Frame);
    expect(m.mmu.tlbLiveEntries()).toBe(1);
    const walks = m.mmu.stats.walks;
    m.mmu.access(GVA, ACC_USER);
    expect(m.mmu.stats.walks).toBe(walks);
    // CR4.PGE toggle drops globals too.
    m.mmu.flushAll();
    expect(m.mmu.tlbLiveEntries()).toBe(0);
  });

  test("with PCIDs, a CR3 load with no-flush keeps the old context's entries; without it they go", () => {
    const m = machine({ paging: "native" });
    m.mmu.pcide = true;
    m.mmu.loadCr3(m.mmu.cr3Frame, 1);
    m.mmu.access(GVA, ACC_USER);
    m.mmu.loadCr3(m.mmu.cr3Frame, 2);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    m.mmu.loadCr3(m.mmu.cr3Frame, 1, true);
    expect(m.mmu.tlbLiveEntries()).toBe(1);
    m.mmu.loadCr3(m.mmu.cr3Frame, 1, false);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
  });

  test("INVPCID single-context drops one PCID; all-context (type 2) drops every PCID", () => {
    const m = machine({ paging: "native" });
    m.mmu.pcide = true;
    m.mmu.loadCr3(m.mmu.cr3Frame, 1);
    m.mmu.access(GVA, ACC_USER);
    m.mmu.loadCr3(m.mmu.cr3Frame, 2, true);
    m.mmu.access(GVA, ACC_USER);
    m.mmu.invpcid(1, 1);
    expect(m.mmu.tlbLiveEntries()).toBe(1); // PCID 2's entry
    m.mmu.loadCr3(m.mmu.cr3Frame, 1, true);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    m.mmu.access(GVA, ACC_USER);
    m.mmu.invpcid(2);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    m.mmu.loadCr3(m.mmu.cr3Frame, 2, true);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
  });

  test("INVEPT single-context drops combined mappings of that EPTP only", () => {
    const m = machine({ paging: "ept" });
    const rootA = m.mmu.nestedRoot;
    // A second EPT hierarchy with the same mappings: a copy of the root table.
    const rootB = m.mem.nframes - 1;
    m.mem.loadTable(rootB, m.mem.copyTable(rootA));
    m.mmu.access(GVA, ACC_USER);
    m.mmu.setNestedContext(1, rootB);
    m.mmu.access(GVA, ACC_USER);
    expect(m.mmu.tlbLiveEntries()).toBe(1);
    m.mmu.invept(1, rootA);
    expect(m.mmu.tlbLiveEntries()).toBe(1); // B untouched
    m.mmu.setNestedContext(1, rootA);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    m.mmu.setNestedContext(1, rootB);
    m.mmu.invept(2);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
  });

  test("INVVPID single-context drops that VPID's mappings only", () => {
    const m = machine({ paging: "ept" });
    const root = m.mmu.nestedRoot;
    m.mmu.access(GVA, ACC_USER);
    m.mmu.setNestedContext(2, root);
    m.mmu.access(GVA, ACC_USER);
    m.mmu.invvpid(1, 1);
    expect(m.mmu.tlbLiveEntries()).toBe(1);
    m.mmu.setNestedContext(1, root);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    m.mmu.access(GVA, ACC_USER);
    m.mmu.invvpid(0, 1, GVA); // individual address
    expect(m.mmu.tlbLiveEntries()).toBe(0);
    m.mmu.setNestedContext(2, root);
    expect(m.mmu.tlbLiveEntries()).toBe(1);
  });

  test("set-associative capacity: a 4K TLB of 1 set x 2 ways keeps the two most recent pages", () => {
    const mem = new PhysMem(64 * PAGE_SIZE);
    const mmu = new Mmu(mem, defaultMmuConfig("native", { tlb: { "4k": { sets: 1, ways: 2 }, "2m": "shared", "1g": null }, psc: null }));
    // Identity-map pages 0..7 at gva 0x1000*i through four tables.
    const [pml4, pdpt, pd, pt] = [10, 11, 12, 13];
    for (const t of [pml4, pdpt, pd, pt]) mem.allocTable(t);
    mem.writeEntry(pml4, 0, ...makeX86Pte({ pfn: pdpt, writable: true, user: true }));
    mem.writeEntry(pdpt, 0, ...makeX86Pte({ pfn: pd, writable: true, user: true }));
    mem.writeEntry(pd, 0, ...makeX86Pte({ pfn: pt, writable: true, user: true }));
    for (let i = 0; i < 8; i++) mem.writeEntry(pt, i, ...makeX86Pte({ pfn: 20 + i, writable: true, user: true }));
    mmu.loadCr3(pml4);
    for (const p of [0, 1, 0, 2]) mmu.access(p * PAGE_SIZE, ACC_USER); // 2 evicts 1 (LRU), not 0
    const walks = mmu.stats.walks;
    mmu.access(0, ACC_USER);
    expect(mmu.stats.walks).toBe(walks);
    mmu.access(PAGE_SIZE, ACC_USER);
    expect(mmu.stats.walks).toBe(walks + 1);
    expect(mmu.hpa).toBe(21 * PAGE_SIZE);
  });
});

describe("accessed and dirty bits", () => {
  test("native: a read sets A only; a write sets A and D", () => {
    const m = machine({ paging: "native" });
    const leaf = guestLeaf(m);
    expect(leaf.lo() & (PTE_A | PTE_D)).toBe(0);
    m.mmu.access(GVA, ACC_USER);
    expect(leaf.lo() & (PTE_A | PTE_D)).toBe(PTE_A);
    m.mmu.access(GVA, ACC_USER | ACC_WRITE); // TLB entry not dirty: walks again to set D
    expect(leaf.lo() & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(m.mmu.stats.walks).toBe(2);
    m.mmu.access(GVA, ACC_USER | ACC_WRITE);
    expect(m.mmu.stats.walks).toBe(2);
  });

  test("EPT with A/D: guest A/D and EPT A/D; guest table pages get EPT D from the guest A/D updates", () => {
    const m = machine({ paging: "ept", eptAd: true });
    const leaf = guestLeaf(m);
    const data = nestedLeafOf(m);
    m.mmu.access(GVA, ACC_USER);
    expect(leaf.lo() & (PTE_A | PTE_D)).toBe(PTE_A);
    expect(data.lo() & (EPT_A | EPT_D)).toBe(EPT_A); // data page read: EPT A only
    // The EPT leaf mapping the guest PT page: accesses to guest tables are writes with EPT A/D.
    const ptGpa = leaf.pfn - 4 * 262144; // guest RAM is at hpa 4 GiB in the demo machine
    const ptLeaf = nestedLeafOfGpa(m, ptGpa * PAGE_SIZE);
    expect(ptLeaf.lo() & (EPT_A | EPT_D)).toBe(EPT_A | EPT_D);
    m.mmu.access(GVA, ACC_USER | ACC_WRITE);
    expect(leaf.lo() & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(data.lo() & (EPT_A | EPT_D)).toBe(EPT_A | EPT_D);
  });

  test("EPT without A/D: EPT entries are left alone", () => {
    const m = machine({ paging: "ept", eptAd: false });
    const data = nestedLeafOf(m);
    m.mmu.access(GVA, ACC_USER | ACC_WRITE);
    expect(data.lo() & (EPT_A | EPT_D)).toBe(0);
    expect(guestLeaf(m).lo() & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
  });

  test("a leaf whose low word has bit 31 set (frame bit 19) and A/D already set is not rewritten", () => {
    const m = machine({ paging: "native" });
    const leaf = guestLeaf(m);
    m.mmu.access(GVA, ACC_USER); // A on every level
    // Point the leaf at a frame above 2 GiB (0x80001) with A and D already set.
    const lo = ((0x80001 << 12) | (leaf.lo() & 0xfff) | PTE_A | PTE_D) >>> 0;
    m.mem.writeEntry(leaf.pfn, leaf.idx, lo, leaf.hi());
    m.mmu.invlpg(GVA);
    const before = m.mmu.stats.adWrites;
    m.mmu.access(GVA, ACC_USER | ACC_WRITE);
    expect(m.mmu.stats.walks).toBe(2);
    expect(m.mmu.stats.adWrites - before).toBe(0);
    expect(leaf.lo()).toBe(lo);
  });

  test("NPT: guest A/D updates are nested writes that set the NPT D bit of the guest table page", () => {
    const m = machine({ paging: "npt" });
    const leaf = guestLeaf(m);
    m.mmu.access(GVA, ACC_USER);
    const ptLeaf = nestedLeafOfGpa(m, (leaf.pfn - 4 * 262144) * PAGE_SIZE);
    expect(ptLeaf.lo() & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
  });
});

function nestedLeafOfGpa(m: TranslateMachine, gpa: number) {
  const probe = new Mmu(m.mem, defaultMmuConfig(m.opts.paging, { psc: null, nestedPsc: null, nestedTlb: null, tlb: null }));
  probe.setNestedContext(1, m.mmu.nestedRoot);
  const log: { kind: number; hpa: number }[] = [];
  probe.log = { push: (kind: number, _l: number, _f: number, hpa: number) => log.push({ kind, hpa }) } as never;
  expect(probe.probePhys(gpa, ACC_READ)).toBe(XLATE_OK);
  const last = log.at(-1)!;
  const pfn = Math.floor(last.hpa / PAGE_SIZE);
  const idx = (last.hpa % PAGE_SIZE) / 8;
  return { lo: () => m.mem.readLo(pfn, idx) };
}

describe("faults", () => {
  test("user write to a supervisor page: #PF error code P|W|U", () => {
    const m = machine({ paging: "native" });
    const leaf = guestLeaf(m);
    m.mem.writeEntry(leaf.pfn, leaf.idx, leaf.lo() & ~PTE_US, leaf.hi());
    expect(m.mmu.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_GUEST_PF);
    expect(m.mmu.errorCode).toBe(PFERR_PRESENT | PFERR_WRITE | PFERR_USER);
    expect(m.mmu.faultGva).toBe(GVA);
    // Supervisor may read it.
    expect(m.mmu.access(GVA, ACC_READ)).toBe(XLATE_OK);
  });

  test("user write to a read-only page: P|W|U; supervisor write faults only with CR0.WP", () => {
    const m = machine({ paging: "ept" });
    const leaf = guestLeaf(m);
    m.mem.writeEntry(leaf.pfn, leaf.idx, leaf.lo() & ~PTE_RW, leaf.hi());
    expect(m.mmu.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_GUEST_PF);
    expect(m.mmu.errorCode).toBe(PFERR_PRESENT | PFERR_WRITE | PFERR_USER);
    expect(m.mmu.access(GVA, ACC_WRITE)).toBe(XLATE_GUEST_PF);
    expect(m.mmu.errorCode).toBe(PFERR_PRESENT | PFERR_WRITE);
    m.mmu.cr0Wp = false;
    expect(m.mmu.access(GVA, ACC_WRITE)).toBe(XLATE_OK);
  });

  test("not-present guest entry: error code without P; fetch from an NX page sets I", () => {
    const m = machine({ paging: "native" });
    const leaf = guestLeaf(m);
    const [lo, hi] = [leaf.lo(), leaf.hi()];
    m.mem.writeEntry(leaf.pfn, leaf.idx, 0, 0);
    expect(m.mmu.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_GUEST_PF);
    expect(m.mmu.errorCode).toBe(PFERR_WRITE | PFERR_USER);
    m.mem.writeEntry(leaf.pfn, leaf.idx, lo, (hi | 0x80000000) >>> 0);
    expect(m.mmu.access(GVA, ACC_USER | ACC_FETCH)).toBe(XLATE_GUEST_PF);
    expect(m.mmu.errorCode).toBe(PFERR_PRESENT | PFERR_USER | PFERR_FETCH);
  });

  test("write through a read-only EPT leaf: EPT violation, qualification write + readable + not writable, and the gpa", () => {
    const m = machine({ paging: "ept" });
    const data = nestedLeafOf(m);
    m.mem.writeEntry(data.pfn, data.idx, data.lo() & ~EPT_W, data.hi());
    expect(m.mmu.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_EPT_VIOLATION);
    const q = m.mmu.exitQual;
    expect(q & EPTQ_WRITE).toBe(EPTQ_WRITE);
    expect(q & EPTQ_READABLE).toBe(EPTQ_READABLE);
    expect(q & EPTQ_WRITABLE).toBe(0);
    expect(q & (EPTQ_GLA_VALID | EPTQ_GLA_FINAL)).toBe(EPTQ_GLA_VALID | EPTQ_GLA_FINAL);
    expect(m.mmu.faultGpa).toBe(m.mmu.probe(GVA, ACC_USER) === XLATE_OK ? m.mmu.gpa : -1);
    // Reads still work.
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_OK);
  });

  test("a not-present EPT entry for a guest table: violation during the guest walk (bit 8 clear)", () => {
    const m = machine({ paging: "ept" });
    const leaf = guestLeaf(m);
    const ptLeafWalk = stepsOf(m, GVA).filter((s) => s.kind === 1);
    // The 4th nested walk translates the guest PT page; its last read is the EPT PTE for it.
    const ptEptLeaf = ptLeafWalk[15]!;
    const pfn = Math.floor(ptEptLeaf.hpa / PAGE_SIZE);
    const idx = (ptEptLeaf.hpa % PAGE_SIZE) / 8;
    m.mem.writeEntry(pfn, idx, 0, 0);
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_EPT_VIOLATION);
    expect(m.mmu.exitQual & (EPTQ_GLA_VALID | EPTQ_GLA_FINAL)).toBe(EPTQ_GLA_VALID);
    expect(m.mmu.exitQual & (EPTQ_READABLE | EPTQ_WRITABLE)).toBe(0);
    expect(Math.floor(m.mmu.faultGpa / PAGE_SIZE)).toBe(leaf.pfn - 4 * 262144);
  });

  test("a write-without-read EPT entry is a misconfiguration", () => {
    const m = machine({ paging: "ept" });
    const data = nestedLeafOf(m);
    const pfn = (data.lo() >>> 12) + (data.hi() & 0xfffff) * 2 ** 20;
    m.mem.writeEntry(data.pfn, data.idx, ...makeEptPte({ pfn, r: false, w: true, memType: 6 }));
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_EPT_MISCONFIG);
    expect(m.mmu.faultReason).toBe("write without read");
    m.mem.writeEntry(data.pfn, data.idx, ...makeEptPte({ pfn, r: true, w: true, memType: 2 }));
    expect(m.mmu.access(GVA, ACC_USER)).toBe(XLATE_EPT_MISCONFIG);
    expect(m.mmu.faultReason).toBe("reserved memory type 2");
  });

  test("NPT: a not-present nested leaf for the data gives #NPF with the final-translation bit", () => {
    const m = machine({ paging: "npt" });
    const data = nestedLeafOf(m);
    m.mem.writeEntry(data.pfn, data.idx, 0, 0);
    expect(m.mmu.access(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_NPF);
    expect(m.mmu.errorCode).toBe(NPF_FINAL + PFERR_WRITE + PFERR_USER);
  });

  test("probe() changes nothing: no A/D, no TLB fill, no counters", () => {
    const m = machine({ paging: "ept" });
    const leaf = guestLeaf(m);
    expect(m.mmu.probe(GVA, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
    expect(leaf.lo() & (PTE_A | PTE_D)).toBe(0);
    expect(m.mmu.stats.walks + m.mmu.stats.guestTableReads + m.mmu.stats.nestedTableReads).toBe(0);
    expect(m.mmu.tlbLiveEntries()).toBe(0);
  });
});
