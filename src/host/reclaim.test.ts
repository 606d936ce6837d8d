// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EventBus, type SimEvent } from "../hw/events.js";
import { ACCESS_OOM, ACCESS_SEGV, HostKernel, type HostConfig, type MmuNotifier, type MmuNotifierRange, type NotifierMm } from "./index.js";
import type { Mm } from "./mm_types.js";

const MiB = 1024 * 1024;
const P = 4096;

function boot(cfg: Partial<HostConfig> = {}) {
  const bus = new EventBus();
  const k = new HostKernel({ ram: 64 * MiB, swap: 256 * MiB, thp: "never", ...cfg }, bus);
  return { k, bus };
}

/** A distinct, non-zero 32-bit value per page. */
function value(i: number): number {
  return Math.imul(i + 1, 2654435761) >>> 0 || 1;
}

describe("reclaim and swap (SEED-PATHS path 5)", () => {
  it("64 MiB RAM, 256 MiB swap: 128 MiB written then read back exactly", () => {
    const { k } = boot();
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 128 * MiB);
    const n = (128 * MiB) / P;
    for (let i = 0; i < n; i++) expect(k.userAccess(mm, hva + i * P, true, value(i))).toBe(value(i));
    const afterWrite = k.vmstat();
    expect(afterWrite.pswpout).toBeGreaterThan(0);
    expect(afterWrite.pageoutrun).toBeGreaterThan(0);
    expect(afterWrite.pgscan_kswapd).toBeGreaterThan(0);
    expect(afterWrite.pgsteal_kswapd).toBe(afterWrite.pswpout);
    k.checkInvariants();
    let wrong = 0;
    for (let i = 0; i < n; i++) if (k.userAccess(mm, hva + i * P, false) !== value(i)) wrong++;
    expect(wrong).toBe(0);
    const s = k.vmstat();
    k.checkInvariants();
    expect(s.oom_kill).toBe(0);
    expect(s.pswpin).toBeGreaterThan(0);
    // Every swap read is a major fault, and every page read back had been evicted (a shadow entry).
    expect(s.pgmajfault).toBe(s.pswpin);
    expect(s.workingset_refault_anon).toBe(s.pswpin);
    expect(mm.majFlt).toBe(s.pswpin);
    // Slots in use = swap PTEs + swap-cache pages whose PTE is present again.
    const used = s.total_swap_pages - s.nr_swap_pages;
    expect(used).toBe(mm.swapents + s.nr_swapcached);
    expect(used).toBeLessThanOrEqual(s.pswpout);
    expect(mm.rss + mm.swapents).toBe(n);
    expect(s.nr_free_pages).toBeGreaterThan(k.wmark.min);
  });

  it("the same without swap: an OOM kill with a clear message, never a wrong value", () => {
    const { k, bus } = boot({ swap: 0 });
    const ooms: SimEvent[] = [];
    bus.listen((e) => {
      if (e.kind === "host.oom") ooms.push(e);
    });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 128 * MiB, { noreserve: true });
    const n = (128 * MiB) / P;
    let failedAt = -1;
    for (let i = 0; i < n; i++) {
      const r = k.userAccess(mm, hva + i * P, true, value(i));
      if (r < 0) {
        expect(r).toBe(ACCESS_OOM);
        failedAt = i;
        break;
      }
      expect(r).toBe(value(i));
    }
    expect(failedAt).toBeGreaterThan(15000);
    expect(ooms.length).toBe(1);
    expect(ooms[0]!.message).toMatch(
      /^Out of memory: Killed process 1 \(qemu\) total-vm:131072kB, anon-rss:\d+kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:\d+kB oom_score_adj:0$/,
    );
    expect(k.lastOomMessage).toBe(ooms[0]!.message);
    expect(k.vmstat().oom_kill).toBe(1);
    expect(mm.dead).toBe(true);
    // Reads after the kill fail; they never return stale or wrong data.
    for (let i = 0; i < 100; i++) expect(k.userAccess(mm, hva + i * P, false)).toBe(ACCESS_SEGV);
    expect(k.nrFreePages).toBe(k.managedPages);
    k.checkInvariants();
  });

  it("the OOM killer picks the largest process and the allocating one carries on", () => {
    const { k } = boot({ swap: 0 });
    const big = k.createProcess("big");
    const small = k.createProcess("small");
    const hb = k.mmap(big, 48 * MiB);
    const hs = k.mmap(small, 32 * MiB);
    for (let a = 0; a < 48 * MiB; a += P) k.userAccess(big, hb + a, true, 1);
    for (let a = 0; a < 32 * MiB; a += P) expect(k.userAccess(small, hs + a, true, 2)).toBe(2);
    expect(big.dead).toBe(true);
    expect(small.dead).toBe(false);
    expect(k.lastOomMessage).toMatch(/Killed process 1 \(big\)/);
    k.checkInvariants();
  });

  it("a notifier sees clear_flush_young, then start before the PTE is cleared and the frame freed, then end", () => {
    const { k, bus } = boot({ ram: 16 * MiB, swap: 64 * MiB });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 32 * MiB);
    const log: { op: string; a: number; b: number; state?: string; free?: boolean }[] = [];
    const rec: MmuNotifier = {
      invalidateRangeStart(r: MmuNotifierRange) {
        const p = k.probe(mm, r.start);
        log.push({ op: "start", a: r.start, b: r.end, state: p.state, free: p.state === "present" && k.meta.flags[p.pfn] === 1 });
      },
      invalidateRangeEnd(r: MmuNotifierRange) {
        log.push({ op: "end", a: r.start, b: r.end, state: k.probe(mm, r.start).state });
      },
      clearFlushYoung(_m: NotifierMm, a: number, b: number) {
        log.push({ op: "cfy", a, b });
        return false;
      },
      clearYoung: () => false,
      testYoung: () => false,
      release: () => {},
    };
    mm.registerNotifier(rec);
    bus.listen((e) => {
      if (e.kind === "host.swap_out") log.push({ op: "swap_out", a: e.hva as number, b: e.pfn as number });
      if (e.kind === "host.free") log.push({ op: "free", a: e.pfn as number, b: e.order as number });
    });
    for (let a = 0; a < 32 * MiB; a += P) k.userAccess(mm, hva + a, true, a + 1);
    // One pass over the log: for each evicted page, cfy < start (PTE present) < end (swap PTE) < swap_out < free.
    const lastCfy = new Map<number, number>();
    const lastStart = new Map<number, { i: number; state?: string; b: number }>();
    const lastEnd = new Map<number, { i: number; state?: string }>();
    const pendingFree = new Map<number, number>();
    let outs = 0;
    log.forEach((e, i) => {
      if (e.op === "cfy") lastCfy.set(e.a, i);
      else if (e.op === "start") lastStart.set(e.a, { i, state: e.state, b: e.b });
      else if (e.op === "end") lastEnd.set(e.a, { i, state: e.state });
      else if (e.op === "swap_out") {
        outs++;
        const st = lastStart.get(e.a)!;
        const en = lastEnd.get(e.a)!;
        const cfy = lastCfy.get(e.a)!;
        expect(cfy).toBeLessThan(st.i);
        expect(st.b).toBe(e.a + P);
        expect(st.state).toBe("present"); // the PTE was still there at start
        expect(en.i).toBeGreaterThan(st.i);
        expect(en.state).toBe("swap"); // the swap entry is in place at end
        pendingFree.set(e.b, i);
      } else if (e.op === "free" && pendingFree.has(e.a)) {
        pendingFree.delete(e.a); // freed after end and the write
      }
    });
    expect(outs).toBeGreaterThan(1000);
    expect(pendingFree.size).toBe(0);
    // Every value survived.
    for (let a = 0; a < 32 * MiB; a += 64 * P) expect(k.userAccess(mm, hva + a, false)).toBe(a + 1);
  });

  it("a page young through the secondary MMU is rotated, not evicted", () => {
    const { k, bus } = boot({ ram: 16 * MiB, swap: 64 * MiB });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 32 * MiB);
    const hot = hva + 3 * P;
    let asked = 0;
    mm.registerNotifier({
      invalidateRangeStart: () => {},
      invalidateRangeEnd: () => {},
      clearFlushYoung: (_m, a) => {
        if (a === hot) asked++;
        return a === hot; // the guest keeps touching this page through EPT
      },
      clearYoung: () => false,
      testYoung: () => false,
      release: () => {},
    });
    const decisions: string[] = [];
    k.userAccess(mm, hot, true, 4242);
    const hotPfn = k.probe(mm, hot).pfn;
    bus.listen((e) => {
      if (e.kind === "host.folio_references" && e.pfn === hotPfn) decisions.push(e.decision as string);
    });
    for (let a = 0; a < 32 * MiB; a += P) if (hva + a !== hot) k.userAccess(mm, hva + a, true, 1);
    expect(k.vmstat().pswpout).toBeGreaterThan(4000);
    expect(asked).toBeGreaterThan(0);
    expect(decisions).toContain("keep");
    expect(decisions).toContain("activate");
    expect(decisions).not.toContain("reclaim");
    expect(k.probe(mm, hot).state).toBe("present");
    expect(k.userAccess(mm, hot, false)).toBe(4242);
  });

  it("a page that holds page-table words keeps them across swap-out and swap-in", () => {
    const { k } = boot({ ram: 16 * MiB, swap: 16 * MiB });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 4 * MiB);
    k.userAccess(mm, hva, true, 0);
    const pfn = k.probe(mm, hva).pfn;
    // The guest made this page of its RAM a page table.
    k.mem.allocTable(pfn);
    for (let i = 0; i < 512; i++) k.mem.writeEntry(pfn, i, (i * 0x1000 + 0x67) >>> 0, i);
    const words = k.mem.copyTable(pfn);
    k.madvise(mm, hva, P, "pageout");
    const p = k.probe(mm, hva);
    expect(p.state).toBe("swap");
    expect(k.mem.isTable(pfn)).toBe(false);
    expect(k.vmstat().pswpout).toBe(1);
    const r = k.getUserPages(mm, hva, false);
    if (!r.ok) throw new Error("gup failed");
    expect(r.major).toBe(true);
    expect(k.mem.isTable(r.pfn)).toBe(true);
    expect(k.mem.copyTable(r.pfn)).toEqual(words);
    k.checkInvariants();
  });

  it("cluster readahead (page-cluster 3) reads the 8-slot block around the faulting slot", () => {
    const { k } = boot({ ram: 16 * MiB, swap: 16 * MiB, pageCluster: 3 });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 64 * P);
    for (let i = 0; i < 64; i++) k.userAccess(mm, hva + i * P, true, value(i));
    k.madvise(mm, hva, 64 * P, "pageout");
    expect(k.vmstat().pswpout).toBe(64);
    const slotOf = (i: number) => k.probe(mm, hva + i * P).slot;
    const block = slotOf(10) - (slotOf(10) % 8);
    const inBlock = [...Array(64).keys()].filter((i) => slotOf(i) >= block && slotOf(i) < block + 8);
    expect(inBlock.length).toBe(8);
    expect(k.userAccess(mm, hva + 10 * P, false)).toBe(value(10));
    let s = k.vmstat();
    expect(s.pswpin).toBe(8);
    expect(s.swap_ra).toBe(7);
    expect(s.pgmajfault).toBe(1);
    // Neighbours come from the swap cache: minor faults, readahead hits.
    for (const i of inBlock) expect(k.userAccess(mm, hva + i * P, false)).toBe(value(i));
    s = k.vmstat();
    expect(s.pswpin).toBe(8);
    expect(s.swap_ra_hit).toBe(7);
    expect(s.pgmajfault).toBe(1);
    k.checkInvariants();
  });

  it("kswapd as an agent: woken at low, stepped in batches until free > high", () => {
    const { k } = boot({ ram: 16 * MiB, swap: 64 * MiB, kswapd: "agent" });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 32 * MiB);
    let a = 0;
    while (!k.kswapdRunning()) k.userAccess(mm, hva + (a += P), true, 5);
    expect(k.nrFreePages).toBeLessThanOrEqual(k.wmark.low);
    let steps = 0;
    while (k.kswapdStep()) steps++;
    expect(steps).toBeGreaterThan(3);
    expect(k.kswapdRunning()).toBe(false);
    expect(k.nrFreePages).toBeGreaterThan(k.wmark.high);
    expect(k.stat.pgsteal_kswapd).toBeGreaterThan(0);
    // Without kswapd steps, allocations below min reclaim directly.
    for (let i = 0; i < 3000; i++) k.userAccess(mm, hva + (a += P), true, 6);
    expect(k.stat.allocstall_normal).toBeGreaterThan(0);
    expect(k.stat.pgsteal_direct).toBeGreaterThan(0);
    k.checkInvariants();
  });

  it("MADV_FREE pages are discarded by reclaim without swap I/O unless written again", () => {
    const { k } = boot({ ram: 16 * MiB, swap: 0 });
    const mm = k.createProcess("qemu");
    const hva = k.mmap(mm, 8 * MiB);
    for (let a = 0; a < 8 * MiB; a += P) k.userAccess(mm, hva + a, true, 3);
    k.madvise(mm, hva, 8 * MiB, "free");
    expect(k.stat.pglazyfree).toBe(2048);
    expect(k.vmstat().nr_inactive_file).toBe(2048);
    k.userAccess(mm, hva, true, 77); // redirtied: must survive
    const other = k.createProcess("other");
    const ho = k.mmap(other, 12 * MiB);
    for (let a = 0; a < 12 * MiB; a += P) expect(k.userAccess(other, ho + a, true, 4)).toBe(4);
    expect(k.stat.pglazyfreed).toBeGreaterThan(1000);
    expect(k.stat.oom_kill).toBe(0);
    expect(k.userAccess(mm, hva, false)).toBe(77);
    expect(k.userAccess(mm, hva + 4 * MiB, false)).toBe(0); // discarded: zero-filled again
    k.checkInvariants();
  });

  it("deterministic: the same run gives the same counters", () => {
    const run = () => {
      const { k } = boot({ ram: 16 * MiB, swap: 32 * MiB });
      const mm: Mm = k.createProcess("qemu");
      const hva = k.mmap(mm, 24 * MiB);
      for (let a = 0; a < 24 * MiB; a += P) k.userAccess(mm, hva + a, (a / P) % 3 !== 0, a);
      for (let a = 0; a < 24 * MiB; a += 7 * P) k.userAccess(mm, hva + a, false);
      return k.vmstat();
    };
    expect(run()).toEqual(run());
  });
});
