// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { LEVEL_SIZE, PAGE_2M, PAGE_SIZE } from "../hw/addr.js";
import { readCounters } from "../hw/counters.js";
import { EventBus, type SimEvent } from "../hw/events.js";
import { ACC_FETCH, ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import { PhysMem } from "../hw/phys_mem.js";
import { PFERR_USER, PFERR_WRITE, PTE_A, PTE_D, PTE_PS, PTE_RW, PTE_US, entryPfn } from "../hw/x86_pte.js";
import type { FaultResult } from "./fault.js";
import { GuestKernel } from "./kernel.js";
import { NativeCpu } from "../hw/native_cpu.js";
import { PAGE_TABLE, leafPfn } from "./pgtable.js";
import type { GuestProcess } from "./process.js";
import { GUEST_COUNTERS, GUEST_PROCESS_COUNTERS } from "./stats.js";
import { DEFAULT_MMAP_BASE } from "./vma.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface Opts {
  levels?: 4 | 5;
  ram?: number;
  cpus?: number;
  pcide?: boolean;
  zeroPage?: boolean;
}

function machine(o: Opts = {}) {
  const levels = o.levels ?? 4;
  const ram = o.ram ?? 64 * MiB;
  const mem = new PhysMem(ram);
  const ports = Array.from({ length: o.cpus ?? 1 }, () => new NativeCpu(mem, { levels, pcide: o.pcide ?? true }));
  const bus = new EventBus();
  const events: SimEvent[] = [];
  bus.listen((e) => events.push(e));
  const k = new GuestKernel({ ram: [[0, ram]], cpus: ports, levels, bus, zeroPage: o.zeroPage ?? true });
  /** A user access as the workload makes it: the hardware walk, the guest #PF handler, the retry. */
  const touch = (proc: GuestProcess, gva: number, write: boolean, cpu = 0, fetch = false): "ok" | FaultResult => {
    const mmu = ports[cpu]!.mmu;
    const acc = ACC_USER | (write ? ACC_WRITE : 0) | (fetch ? ACC_FETCH : 0);
    for (let i = 0; i < 4; i++) {
      const r = mmu.access(gva, acc);
      if (r === XLATE_OK) return "ok";
      expect(r).toBe(XLATE_GUEST_PF);
      const res = k.handlePageFault(proc, mmu.faultGva, mmu.errorCode, cpu);
      if (res !== "fixed") return res;
    }
    throw new Error("fault loop");
  };
  const of = (kind: string) => events.filter((e) => e.kind === kind);
  return { mem, ports, port: ports[0]!, k, bus, events, of, touch };
}

/** The gva -> frame map the guest wrote into level-1 entries, from the event stream. */
function leafFrames(events: SimEvent[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of events) {
    if (e.kind === "guest.pte_write" && e.level === 1 && ((e.lo as number) & 1) !== 0)
      m.set(e.gva as number, entryPfn(e.lo as number, e.hi as number));
  }
  return m;
}

const alignUp = (a: number, s: number) => Math.ceil(a / s) * s;

describe("demand paging, 4-level", () => {
  test("N written pages in one 2 MiB region: N leaf PTEs + 3 upper entries, 3 tables + N frames", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = alignUp(p.mmap("heap", 4 * MiB), PAGE_2M);
    const used0 = m.k.alloc.nrUsed;
    const writes0 = m.k.stats.pteWrites;
    const N = 37;
    for (let i = 0; i < N; i++) expect(m.touch(p, base + i * PAGE_SIZE, true)).toBe("ok");
    expect(m.k.stats.pteWrites - writes0).toBe(N + 3);
    expect(m.k.alloc.nrUsed - used0).toBe(N + 3);
    expect(m.k.stats.nr_page_table_pages).toBe(4); // PGD + PUD + PMD + PT
    expect(p.VmPTE).toBe(4);
    expect(p.RssAnon).toBe(N);
    expect(m.k.stats.pgfault).toBe(N);
    expect(p.min_flt).toBe(N);
    const levels = m.of("guest.pte_write").map((e) => e.level);
    expect(levels.slice(0, 4)).toEqual([4, 3, 2, 1]);
    expect(levels.filter((l) => l === 1).length).toBe(N);
    // Intermediate entries are _PAGE_TABLE; leaves P RW US A D (+ soft-dirty), NX.
    for (const e of m.of("guest.pte_write")) {
      const lo = e.lo as number;
      if ((e.level as number) > 1) expect(lo & 0xfff).toBe(PAGE_TABLE);
      else expect(lo & (PTE_RW | PTE_US | PTE_A | PTE_D)).toBe(PTE_RW | PTE_US | PTE_A | PTE_D);
    }
    // A second pass takes no fault and writes nothing.
    for (let i = 0; i < N; i++) expect(m.touch(p, base + i * PAGE_SIZE, true)).toBe("ok");
    expect(m.k.stats.pgfault).toBe(N);
    expect(m.k.stats.pteWrites - writes0).toBe(N + 3);
  });

  test("the hardware walker finds, for each touched gva, the frame the guest allocated", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("heap", 3 * MiB);
    const gvas = [0, 1, 2, 100, 511, 512, 700].map((i) => base + i * PAGE_SIZE);
    for (const g of gvas) expect(m.touch(p, g + 8, true)).toBe("ok");
    const frames = leafFrames(m.events);
    const probe = new NativeCpu(m.mem, { levels: 4 }).mmu;
    probe.loadCr3(p.pgd);
    const seen = new Set<number>();
    for (const g of gvas) {
      expect(probe.probe(g + 123, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
      const pfn = Math.floor(probe.hpa / PAGE_SIZE);
      expect(pfn).toBe(frames.get(g));
      expect(probe.hpa % PAGE_SIZE).toBe(123);
      expect(m.k.alloc.allocatedOrder(pfn)).toBe(0);
      expect(m.mem.isTable(pfn)).toBe(false);
      seen.add(pfn);
    }
    expect(seen.size).toBe(gvas.length);
    // An untouched page of the VMA is not mapped.
    expect(probe.probe(base + 5 * PAGE_SIZE, ACC_USER)).toBe(XLATE_GUEST_PF);
  });

  test("read faults map the shared zero page read-only; a write then copies (two PTE writes, one INVLPG)", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = alignUp(p.mmap("heap", 4 * MiB), PAGE_2M);
    const used0 = m.k.alloc.nrUsed;
    for (let i = 0; i < 8; i++) expect(m.touch(p, base + i * PAGE_SIZE, false)).toBe("ok");
    expect(m.k.alloc.nrUsed - used0).toBe(3); // tables only
    expect(m.k.stats.zero_page_maps).toBe(8);
    expect(p.RssAnon).toBe(0);
    const frames = leafFrames(m.events);
    for (let i = 0; i < 8; i++) expect(frames.get(base + i * PAGE_SIZE)).toBe(m.k.zeroGfn);
    const writes = m.k.stats.pteWrites;
    const invlpg = m.port.calls.invlpg;
    expect(m.touch(p, base, true)).toBe("ok");
    expect(m.k.stats.cow_faults).toBe(1);
    expect(m.k.stats.pteWrites - writes).toBe(2);
    expect(m.port.calls.invlpg - invlpg).toBe(1);
    expect(p.RssAnon).toBe(1);
    expect(m.port.mmu.probe(base, ACC_USER | ACC_WRITE)).toBe(XLATE_OK);
    expect(Math.floor(m.port.mmu.hpa / PAGE_SIZE)).not.toBe(m.k.zeroGfn);
    expect(m.port.mmu.probe(base + PAGE_SIZE, ACC_USER)).toBe(XLATE_OK);
    expect(Math.floor(m.port.mmu.hpa / PAGE_SIZE)).toBe(m.k.zeroGfn);
  });

  test("with the zero page off, a read fault allocates a writable, dirty page", () => {
    const m = machine({ zeroPage: false });
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("heap", MiB);
    expect(m.touch(p, base, false)).toBe("ok");
    expect(p.RssAnon).toBe(1);
    const leaf = m.of("guest.pte_write").at(-1)!;
    expect((leaf.lo as number) & (PTE_RW | PTE_D)).toBe(PTE_RW | PTE_D);
  });

  test("faults outside a VMA, writes to a read-only VMA and fetches from NX pages are SIGSEGV", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const ro = p.mmap("ro", MiB, { write: false });
    const rw = p.mmap("rw", MiB);
    expect(m.touch(p, 0x1000, false)).toBe("segv");
    expect(m.touch(p, ro, true)).toBe("segv");
    expect(m.touch(p, ro, false)).toBe("ok");
    expect(m.touch(p, rw, false, 0, true)).toBe("segv"); // not-present fetch maps it with NX, then the NX fault
    expect(m.k.handlePageFault(p, 2 ** 47 + 4096, PFERR_USER)).toBe("segv");
    expect(m.k.stats.segv).toBe(4);
  });

  test("a fault on an entry that already allows the access is spurious and writes only for a write", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("heap", MiB);
    expect(m.touch(p, base, true)).toBe("ok");
    const w = m.k.stats.pteWrites;
    expect(m.k.handlePageFault(p, base, PFERR_USER)).toBe("fixed");
    expect(m.k.handlePageFault(p, base, PFERR_USER | PFERR_WRITE)).toBe("fixed");
    expect(m.k.stats.spurious_faults).toBe(2);
    expect(m.k.stats.pteWrites).toBe(w); // A and D already set: nothing to change
  });

  test("running out of guest memory ends the fault with oom", () => {
    const m = machine({ ram: 2 * MiB });
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("heap", 2 * MiB);
    const results: string[] = [];
    for (let i = 0; i < 512; i++) results.push(m.touch(p, base + i * PAGE_SIZE, true));
    expect(results).toContain("oom");
    expect(m.k.alloc.nrFree).toBe(0);
  });
});

describe("munmap and TLB flushes", () => {
  function setup(pages: number) {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = alignUp(p.mmap("heap", 8 * MiB), PAGE_2M);
    for (let i = 0; i < pages; i++) expect(m.touch(p, base + i * PAGE_SIZE, true)).toBe("ok");
    return { m, p, base };
  }

  test("unmapping 10 pages of a larger VMA issues 10 INVLPGs and frees 10 frames; the tables stay", () => {
    const { m, p, base } = setup(10);
    const free0 = m.k.alloc.nrFree;
    const c0 = { ...m.port.calls };
    p.munmap(base, 10 * PAGE_SIZE);
    expect(m.port.calls.invlpg - c0.invlpg).toBe(10);
    expect(m.port.calls.flushTlb - c0.flushTlb).toBe(0);
    expect(m.of("guest.invlpg").map((e) => e.gva)).toEqual(Array.from({ length: 10 }, (_, i) => base + i * PAGE_SIZE));
    expect(m.k.stats.nr_tlb_local_flush_one).toBe(10);
    expect(m.k.alloc.nrFree - free0).toBe(10);
    expect(p.VmPTE).toBe(4);
    expect(p.RssAnon).toBe(0);
    expect(m.touch(p, base, false)).toBe("segv");
    expect(p.vmas.length).toBe(2); // split around the hole
  });

  test("unmapping 100 pages issues one full flush and no INVLPG", () => {
    const { m, p, base } = setup(100);
    const c0 = { ...m.port.calls };
    p.munmap(base, 100 * PAGE_SIZE);
    expect(m.port.calls.invlpg - c0.invlpg).toBe(0);
    expect(m.port.calls.flushTlb - c0.flushTlb).toBe(1);
    expect(m.k.stats.nr_tlb_local_flush_all).toBe(1);
  });

  test("33 pages is still INVLPGs, 34 is a full flush (tlb_single_page_flush_ceiling)", () => {
    for (const [n, invlpg, flush] of [
      [33, 33, 0],
      [34, 0, 1],
    ] as const) {
      const { m, p, base } = setup(n);
      const c0 = { ...m.port.calls };
      p.munmap(base, n * PAGE_SIZE);
      expect(m.port.calls.invlpg - c0.invlpg).toBe(invlpg);
      expect(m.port.calls.flushTlb - c0.flushTlb).toBe(flush);
    }
  });

  test("unmapping a process's only VMA frees its tables, and the freed-table range makes it a full flush (as in Linux)", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const free0 = m.k.alloc.nrFree;
    const base = p.mmap("heap", 10 * PAGE_SIZE);
    for (let i = 0; i < 10; i++) m.touch(p, base + i * PAGE_SIZE, true);
    const c0 = { ...m.port.calls };
    p.munmap(base, 10 * PAGE_SIZE);
    expect(m.port.calls.flushTlb - c0.flushTlb).toBe(1);
    expect(m.port.calls.invlpg - c0.invlpg).toBe(0);
    expect(p.VmPTE).toBe(1);
    expect(m.k.alloc.nrFree).toBe(free0);
    // The PGD entry was cleared last (p4d_clear in free_pud_range's tail).
    const clears = m.of("guest.pte_write").filter((e) => e.lo === 0 && (e.level as number) > 1);
    expect(clears.map((e) => e.level)).toEqual([2, 3, 4]);
  });

  test("tables shared with a neighbouring VMA survive its unmap (floor/ceiling)", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const a = p.mmap("a", 16 * PAGE_SIZE);
    const b = p.mmap("b", 16 * PAGE_SIZE);
    expect(b).toBe(a - 16 * PAGE_SIZE);
    m.touch(p, a, true);
    m.touch(p, b, true);
    expect(p.VmPTE).toBe(4);
    p.munmap(b, 16 * PAGE_SIZE);
    expect(p.VmPTE).toBe(4);
    expect(m.touch(p, a + 8, false)).toBe("ok");
    p.munmap(a, 16 * PAGE_SIZE);
    expect(p.VmPTE).toBe(1);
  });

  test("after munmap the TLB gives no stale translation", () => {
    const { m, p, base } = setup(3);
    p.munmap(base, 3 * PAGE_SIZE);
    expect(m.port.mmu.access(base, ACC_USER)).toBe(XLATE_GUEST_PF);
  });
});

describe("exit, 5-level, huge pages", () => {
  test("exit returns every frame and table to the allocator", () => {
    const m = machine({ ram: 128 * MiB });
    const free0 = m.k.alloc.nrFree;
    const p = m.k.createProcess("a");
    const q = m.k.createProcess("b");
    m.k.contextSwitch(p);
    const h = p.mmap("heap", 6 * MiB);
    const r = p.mmap("ro", MiB, { write: false });
    const huge = p.mmap("huge", 4 * MiB, { hugePage: "2m" });
    for (let i = 0; i < 1536; i += 7) m.touch(p, h + i * PAGE_SIZE, i % 2 === 0);
    for (let i = 0; i < 256; i += 3) m.touch(p, r + i * PAGE_SIZE, false);
    m.touch(p, huge, true);
    m.touch(p, huge + PAGE_2M, false);
    expect(p.HugetlbPages).toBe(1024);
    p.exit();
    expect(m.k.currentProcess()).toBe(null);
    expect(m.port.mmu.cr3Frame).toBe(m.k.initMm.pgd);
    q.exit();
    expect(m.k.alloc.nrFree).toBe(free0);
    expect(m.k.stats.nr_page_table_pages).toBe(0);
    expect(m.k.stats.nr_anon_pages).toBe(0);
    expect(m.k.stats.nr_hugetlb_pages).toBe(0);
    expect(m.k.stats.nr_processes).toBe(0);
    expect(m.of("guest.process_exit").map((e) => e.pid)).toEqual([p.pid, q.pid]);
    expect(() => p.mmap("x", 4096)).toThrow();
  });

  test("5-level: N pages write N leaves + 4 upper entries, allocate 4 tables, and the walker agrees", () => {
    const m = machine({ levels: 5 });
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = alignUp(p.mmap("heap", 4 * MiB), PAGE_2M);
    const used0 = m.k.alloc.nrUsed;
    const N = 20;
    for (let i = 0; i < N; i++) expect(m.touch(p, base + i * PAGE_SIZE, true)).toBe("ok");
    expect(m.k.stats.pteWrites).toBe(N + 4);
    expect(m.k.alloc.nrUsed - used0).toBe(N + 4);
    expect(
      m
        .of("guest.pte_write")
        .slice(0, 5)
        .map((e) => e.level),
    ).toEqual([5, 4, 3, 2, 1]);
    const frames = leafFrames(m.events);
    for (let i = 0; i < N; i++) {
      expect(m.port.mmu.probe(base + i * PAGE_SIZE, ACC_USER)).toBe(XLATE_OK);
      expect(Math.floor(m.port.mmu.hpa / PAGE_SIZE)).toBe(frames.get(base + i * PAGE_SIZE));
    }
    const free = m.k.alloc.nrFree;
    p.exit();
    expect(m.k.alloc.nrFree - free).toBe(N + 5);
  });

  test("2 MiB guest pages: one fault per huge page, a PS leaf written read-only then made writable", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("huge", 3 * MiB, { hugePage: "2m" });
    expect(base % PAGE_2M).toBe(0);
    expect(p.vmas[0]!.end - p.vmas[0]!.start).toBe(4 * MiB); // rounded up
    const used0 = m.k.alloc.nrUsed;
    for (let i = 0; i < 512; i += 64) expect(m.touch(p, base + i * PAGE_SIZE, true)).toBe("ok");
    expect(m.k.stats.pgfault).toBe(1);
    expect(m.k.alloc.nrUsed - used0).toBe(2 + 512); // PUD, PMD tables + the 2 MiB page
    const writes = m.of("guest.pte_write");
    expect(writes.map((e) => e.level)).toEqual([4, 3, 2, 2]);
    expect((writes[2]!.lo as number) & (PTE_PS | PTE_RW)).toBe(PTE_PS);
    expect((writes[3]!.lo as number) & (PTE_PS | PTE_RW | PTE_D)).toBe(PTE_PS | PTE_RW | PTE_D);
    expect(m.port.mmu.probe(base + 5 * PAGE_SIZE + 9, ACC_USER)).toBe(XLATE_OK);
    expect(m.port.mmu.pageSize).toBe(PAGE_2M);
    const pfn = leafPfn(writes[3]!.lo as number, writes[3]!.hi as number, 2);
    expect(m.port.mmu.hpa).toBe(pfn * PAGE_SIZE + 5 * PAGE_SIZE + 9);
    expect(m.k.alloc.allocatedOrder(pfn)).toBe(9);
    // The only VMA goes: its tables too, so (as in Linux) the range widens into a full flush.
    m.touch(p, base + PAGE_2M, false);
    expect(p.HugetlbPages).toBe(1024);
    const c0 = { ...m.port.calls };
    const free = m.k.alloc.nrFree;
    p.munmap(base, 4 * MiB);
    expect(m.port.calls.flushTlb - c0.flushTlb).toBe(1);
    expect(m.k.alloc.nrFree - free).toBe(1024 + 2);
    expect(p.HugetlbPages).toBe(0);
    expect(() => p.munmap(p.mmap("h2", PAGE_2M, { hugePage: "2m" }), PAGE_SIZE)).toThrow();
  });

  test("2 MiB unmap next to a 4 KiB VMA flushes with a 2 MiB stride", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const huge = p.mmap("huge", 4 * MiB, { hugePage: "2m" });
    const small = p.mmap("small", 64 * PAGE_SIZE, { addr: huge + 4 * MiB });
    m.touch(p, small, true);
    m.touch(p, huge, true);
    m.touch(p, huge + PAGE_2M, true);
    const c0 = { ...m.port.calls };
    p.munmap(huge, 4 * MiB);
    expect(m.of("guest.invlpg").map((e) => e.gva)).toEqual([huge, huge + PAGE_2M]);
    expect(m.port.calls.flushTlb - c0.flushTlb).toBe(0);
  });

  test("1 GiB guest pages map at level 3", () => {
    const m = machine({ ram: 3 * GiB });
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("giant", GiB, { hugePage: "1g" });
    expect(base % GiB).toBe(0);
    expect(m.touch(p, base + 12345 * PAGE_SIZE, false)).toBe("ok");
    expect(m.of("guest.pte_write").map((e) => e.level)).toEqual([4, 3]);
    expect(m.port.mmu.probe(base + 3, ACC_USER)).toBe(XLATE_OK);
    expect(m.port.mmu.pageSize).toBe(LEVEL_SIZE[3]);
    expect(p.HugetlbPages).toBe(262144);
    const free = m.k.alloc.nrFree;
    p.exit();
    expect(m.k.alloc.nrFree - free).toBe(262144 + 2);
  });
});

describe("context switches and PCIDs", () => {
  test("with PCID, switching back to a process keeps its TLB entries (noFlush); a flush while away is caught up", () => {
    const m = machine();
    const a = m.k.createProcess("a");
    const b = m.k.createProcess("b");
    m.k.contextSwitch(a);
    const ga = a.mmap("heap", MiB);
    m.touch(a, ga, true);
    m.touch(a, ga + PAGE_SIZE, true);
    m.k.contextSwitch(b);
    m.k.contextSwitch(a);
    const loads = m.of("guest.cr3_load").slice(-3);
    expect(loads.map((e) => [e.pid, e.pcid, e.noFlush])).toEqual([
      [a.pid, 2, 0],
      [b.pid, 3, 0],
      [a.pid, 2, 1],
    ]);
    const hits = m.port.mmu.stats.tlbHits;
    expect(m.port.mmu.access(ga, ACC_USER)).toBe(XLATE_OK);
    expect(m.port.mmu.stats.tlbHits).toBe(hits + 1);
    // a's mapping changes while b runs: no INVLPG now, a flush when a comes back.
    m.k.contextSwitch(b);
    const inv = m.port.calls.invlpg;
    a.munmap(ga, PAGE_SIZE);
    expect(m.port.calls.invlpg).toBe(inv);
    m.k.contextSwitch(a);
    expect(m.of("guest.cr3_load").at(-1)!.noFlush).toBe(0);
    expect(m.port.mmu.access(ga, ACC_USER)).toBe(XLATE_GUEST_PF);
    expect(m.k.stats.ctxt).toBe(5);
  });

  test("without PCID every switch flushes with PCID 0; switching to the running process does nothing", () => {
    const m = machine({ pcide: false });
    const a = m.k.createProcess("a");
    const b = m.k.createProcess("b");
    m.k.contextSwitch(a);
    m.k.contextSwitch(a);
    m.k.contextSwitch(b);
    m.k.contextSwitch(a);
    expect(m.of("guest.cr3_load").map((e) => [e.pcid, e.noFlush])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(m.k.stats.ctxt).toBe(3);
  });

  test("ASID slots are recycled round-robin after six address spaces", () => {
    const m = machine();
    const procs = Array.from({ length: 7 }, (_, i) => m.k.createProcess(`p${i}`));
    for (const p of procs) m.k.contextSwitch(p);
    expect(
      m
        .of("guest.cr3_load")
        .slice(1)
        .map((e) => e.pcid),
    ).toEqual([2, 3, 4, 5, 6, 1, 2]);
  });

  test("a mapping change reaches every CPU running the mm (shootdown)", () => {
    const m = machine({ cpus: 2 });
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p, 0);
    m.k.contextSwitch(p, 1);
    const base = alignUp(p.mmap("heap", 4 * MiB), PAGE_2M);
    for (let i = 0; i < 5; i++) m.touch(p, base + i * PAGE_SIZE, true, i % 2);
    m.touch(p, base, false, 1);
    p.munmap(base, 5 * PAGE_SIZE, 0);
    expect(m.ports[0]!.calls.invlpg).toBe(5);
    expect(m.ports[1]!.calls.invlpg).toBe(5);
    expect(m.k.stats.nr_tlb_remote_flush).toBe(1);
    expect(m.k.stats.nr_tlb_remote_flush_received).toBe(1);
    expect(m.k.stats.nr_tlb_local_flush_one).toBe(5);
    expect(m.ports[1]!.mmu.access(base, ACC_USER)).toBe(XLATE_GUEST_PF);
  });
});

describe("layout, counters, snapshot", () => {
  test("mmap places VMAs top-down from mmap_base, aligns huge ones, honours a fixed address", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    const a = p.mmap("a", 5000);
    expect(a).toBe(DEFAULT_MMAP_BASE - 2 * PAGE_SIZE);
    const b = p.mmap("b", PAGE_SIZE);
    expect(b).toBe(a - PAGE_SIZE);
    const h = p.mmap("h", PAGE_2M, { hugePage: "2m" });
    expect(h % PAGE_2M).toBe(0);
    expect(h + PAGE_2M).toBeLessThanOrEqual(b);
    expect(p.mmap("f", PAGE_SIZE, { addr: 0x400000 })).toBe(0x400000);
    expect(() => p.mmap("f2", PAGE_SIZE, { addr: 0x400000 })).toThrow();
    expect(p.vmas.map((v) => v.name)).toEqual(["f", "h", "b", "a"]);
  });

  test("counters are declared for every field, and read by readCounters", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    m.touch(p, p.mmap("x", MiB), true);
    expect(Object.keys(m.k.stats).sort()).toEqual(GUEST_COUNTERS.map((d) => d.name).sort());
    const c = readCounters(GUEST_COUNTERS, m.k.stats);
    expect(c.pgfault).toBe(1);
    expect(c.nr_free_pages).toBe(m.k.alloc.nrFree);
    expect(readCounters(GUEST_PROCESS_COUNTERS, p)).toEqual({ RssAnon: 1, HugetlbPages: 0, VmPTE: 4, RssFile: 0, min_flt: 1, maj_flt: 0 });
  });

  test("no events are built when nobody listens", () => {
    const mem = new PhysMem(16 * MiB);
    const port = new NativeCpu(mem, { levels: 4 });
    const bus = new EventBus();
    let built = 0;
    const orig = bus.emit.bind(bus);
    bus.emit = (k, f) => {
      built++;
      orig(k, f);
    };
    const k = new GuestKernel({ ram: [[0, 16 * MiB]], cpus: [port], bus });
    const p = k.createProcess("a");
    k.contextSwitch(p);
    k.handlePageFault(p, p.mmap("x", MiB), PFERR_USER | PFERR_WRITE);
    expect(built).toBe(0);
  });

  test("snapshot and restore (with the memory's) replay the same frames and counters", () => {
    const m = machine();
    const p = m.k.createProcess("a");
    m.k.contextSwitch(p);
    const base = p.mmap("heap", 4 * MiB);
    for (let i = 0; i < 50; i++) m.touch(p, base + i * PAGE_SIZE, true);
    const ks = m.k.snapshot();
    const ms = m.mem.snapshot();
    const run = () => {
      m.port.mmu.flushAll();
      const q = m.k.createProcess("b");
      m.k.contextSwitch(q);
      const g = q.mmap("x", MiB);
      for (let i = 0; i < 30; i++) m.touch(q, g + i * 3 * PAGE_SIZE, true);
      p.munmap(base, 20 * PAGE_SIZE);
      m.k.contextSwitch(p);
      for (let i = 50; i < 60; i++) expect(m.touch(p, base + i * PAGE_SIZE, true)).toBe("ok");
      return { stats: { ...m.k.stats }, free: m.k.alloc.nrFree, pgd: q.pgd, rss: p.RssAnon };
    };
    m.events.length = 0;
    const first = run();
    const firstFrames = [...leafFrames(m.events)];
    m.k.restore(ks);
    m.mem.restore(ms);
    expect(m.k.processes.map((x) => x.name)).toEqual(["a"]);
    expect(m.k.currentProcess()).toBe(p);
    m.events.length = 0;
    expect(run()).toEqual(first);
    expect([...leafFrames(m.events)]).toEqual(firstFrames);
  });
});
