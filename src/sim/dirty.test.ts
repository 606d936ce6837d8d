// SPDX-License-Identifier: MIT
// KVM marks the host folio dirty when it maps it writable (kvm_release_faultin_page(..., dirty =
// map_writable) since Linux 6.13; kvm_release_page_dirty() for prefetched pages): a guest that
// writes memory QEMU made lazyfree with MADV_FREE keeps its data through MADV_PAGEOUT and reclaim,
// under EPT, NPT and shadow paging alike. And the flush counts of kvm_flush_remote_tlbs().
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { Machine, type ProcState, type VmState } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

const MiB = 2 ** 20;

function machine(mmu: string, o: { hostRam: string; swap: string; ram: string; vcpus?: number }): Machine {
  const vcpus = o.vcpus ?? 1;
  const procs = Array.from({ length: vcpus }, (_, i) => `      - {name: p${i}, vcpu: ${i}, steps: []}`).join("\n");
  return new Machine(
    loadScenario(
      `
seed: 3
host: {ram: ${o.hostRam}, swap: ${o.swap}, thp: never}
vms:
  - name: vm0
    ram: ${o.ram}
    vcpus: ${vcpus}
    mmu: ${mmu}
    processes:
${procs}
`,
      "dirty.yaml",
    ),
  );
}

/** The guest frame the last access of `ps` reached, as the checker sees it. */
function lastGfn(vm: VmState, ps: ProcState, gva: number): number {
  return vm.qemu.kvm.vcpus[ps.cpu]!.archMmu.accessedGfn(gva);
}

/** Writes `pages` pages of a fresh region; returns its gva and the guest frame of each page. */
function writeRegion(m: Machine, ps: ProcState, pages: number): { gva: number; gfns: number[] } {
  const vm = ps.vm;
  vm.contextSwitch(ps.proc, ps.cpu);
  const gva = vm.mmap(ps.proc, `r${ps.proc.vmas.length}`, pages * PAGE_SIZE);
  const gfns: number[] = [];
  for (let i = 0; i < pages; i++) {
    m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
    gfns.push(lastGfn(vm, ps, gva + i * PAGE_SIZE));
  }
  return { gva, gfns };
}

/** QEMU's madvise on each guest frame (the guest's frames need not be contiguous). */
function madviseGfns(vm: VmState, gfns: number[], advice: "FREE" | "PAGEOUT"): void {
  for (const gfn of gfns) vm.qemu.madvise(gfn * PAGE_SIZE, PAGE_SIZE, advice);
}

function touch(m: Machine, ps: ProcState, gva: number, pages: number, op: number): void {
  for (let i = 0; i < pages; i++) m.runAccess(ps, gva + i * PAGE_SIZE, op);
}

describe("KVM dirties what it maps writable: MADV_FREE, a guest rewrite, then MADV_PAGEOUT or reclaim", () => {
  const PAGES = 1024;
  const HALF = PAGES / 2;
  for (const mmu of ["ept", "npt", "shadow"]) {
    test(`${mmu}: MADV_PAGEOUT keeps the rewritten half (redirtied, resident) and discards only the clean half; all of it reads back`, () => {
      const m = machine(mmu, { hostRam: "512MiB", swap: "256MiB", ram: "128MiB" });
      const vm = m.vms[0]!;
      const ps = vm.procs[0]!;
      const { gva, gfns } = writeRegion(m, ps, PAGES);
      expect(new Set(gfns).size).toBe(PAGES);
      const v0 = m.host.vmstat();
      madviseGfns(vm, gfns, "FREE");
      const v1 = m.host.vmstat();
      expect(v1.pglazyfree! - v0.pglazyfree!).toBe(PAGES);
      // The notifier took every spte away: rewriting half of them faults it back in, writable,
      // through gup_fast() of PTEs that MADV_FREE left writable but clean. Shadow paging also
      // prefetches the other 7 sptes of each 8-aligned group (dirtied too: kvm_mmu_prefetch_sptes()).
      const k0 = vm.qemu.kvm.statsWithVcpus();
      // Half the pages, from an 8-aligned guest page on so that shadow prefetch stays inside it.
      const off = (8 - (Math.floor(gva / PAGE_SIZE) % 8)) % 8;
      const hot = gva + off * PAGE_SIZE;
      touch(m, ps, hot, HALF, OP_WRITE);
      expect(vm.qemu.kvm.statsWithVcpus().pf_fixed! - k0.pf_fixed!).toBe(mmu === "shadow" ? HALF / 8 : HALF);
      const rss = vm.qemu.rss().rss;
      madviseGfns(vm, gfns, "PAGEOUT");
      const v2 = m.host.vmstat();
      // Only the other half stayed clean: it is discarded without I/O; the rewritten half is
      // swap-backed again and stays (try_to_unmap_one() on a dirty lazyfree folio).
      expect(v2.pglazyfreed! - v1.pglazyfreed!).toBe(HALF);
      expect(v2.pswpout! - v1.pswpout!).toBe(0);
      expect(rss - vm.qemu.rss().rss).toBe(HALF * PAGE_SIZE);
      touch(m, ps, hot, HALF, OP_READ);
      expect(m.checker.dataErrors).toBe(0);
      expect(m.checker.invariantViolations).toBe(0);
      expect(m.checker.checkStaleMappings()).toBe(0);
      // A second MADV_PAGEOUT swaps the rewritten pages out, and they read back from swap.
      madviseGfns(vm, gfns.slice(off, off + HALF), "PAGEOUT");
      const v3 = m.host.vmstat();
      expect(v3.pswpout! - v2.pswpout!).toBe(HALF);
      touch(m, ps, hot, HALF, OP_READ);
      expect(m.host.vmstat().pswpin! - v3.pswpin!).toBe(HALF);
      expect(m.checker.dataErrors).toBe(0);
    });

    test(`${mmu}: under kswapd and direct reclaim the rewritten lazyfree pages are swapped, not discarded`, () => {
      const m = machine(mmu, { hostRam: "64MiB", swap: "256MiB", ram: "256MiB" });
      const vm = m.vms[0]!;
      const ps = vm.procs[0]!;
      const { gva, gfns } = writeRegion(m, ps, PAGES);
      madviseGfns(vm, gfns, "FREE");
      touch(m, ps, gva, PAGES, OP_WRITE);
      const v0 = m.host.vmstat();
      writeRegion(m, ps, (96 * MiB) / PAGE_SIZE); // pressure: more than the host's RAM
      const v1 = m.host.vmstat();
      expect(v1.pgscan_kswapd! + v1.pgscan_direct! - v0.pgscan_kswapd! - v0.pgscan_direct!).toBeGreaterThan(0);
      expect(v1.pglazyfreed! - v0.pglazyfreed!).toBe(0);
      touch(m, ps, gva, PAGES, OP_READ);
      expect(m.host.vmstat().pswpin! - v1.pswpin!).toBeGreaterThan(0); // some of them did go to swap
      expect(m.checker.dataErrors).toBe(0);
      expect(m.checker.invariantViolations).toBe(0);
      expect(m.checker.checkStaleMappings()).toBe(0);
    });
  }
});

describe("kvm_flush_remote_tlbs(): a request per vCPU, one flush per entry, IPIs only into guest mode", () => {
  const PER_VCPU = 1024;
  for (const mmu of ["ept", "shadow"]) {
    for (const running of [false, true]) {
      test(`${mmu}: MADV_PAGEOUT of ${2 * PER_VCPU} mapped pages with both vCPUs ${running ? "in guest mode" : "stopped"}`, () => {
        const m = machine(mmu, { hostRam: "512MiB", swap: "256MiB", ram: "128MiB", vcpus: 2 });
        const vm = m.vms[0]!;
        const kvm = vm.qemu.kvm;
        const regions = vm.procs.map((ps) => ({ ps, ...writeRegion(m, ps, PER_VCPU) }));
        if (!running) for (const v of kvm.vcpus) v.halt();
        const s0 = kvm.statsWithVcpus();
        const v0 = kvm.vcpus.map((v) => ({ ...v.stats }));
        for (const r of regions) madviseGfns(vm, r.gfns, "PAGEOUT");
        const s1 = kvm.statsWithVcpus();
        expect(m.host.vmstat().pswpout).toBe(2 * PER_VCPU);
        // One notifier invalidation per folio (try_to_unmap_one()), each zapping one leaf.
        expect(s1.remote_tlb_flush_requests! - s0.remote_tlb_flush_requests!).toBe(2 * PER_VCPU);
        expect(s1.remote_tlb_flush! - s0.remote_tlb_flush!).toBe(running ? 2 * PER_VCPU : 0);
        // Nothing is flushed until a vCPU enters the guest again.
        expect(s1.tlb_flush! - s0.tlb_flush!).toBe(0);
        for (const r of regions) touch(m, r.ps, r.gva, 1, OP_READ);
        kvm.vcpus.forEach((v, i) => {
          expect(v.stats.tlb_flush - v0[i]!.tlb_flush).toBe(1);
          // A kicked vCPU takes one EXTERNAL_INTERRUPT exit; a stopped one takes none.
          expect(v.stats.irq_exits - v0[i]!.irq_exits).toBe(running ? 1 : 0);
          expect(v.stats.exits - v0[i]!.exits).toBe(v.stats.pf_taken - v0[i]!.pf_taken + (running ? 1 : 0));
        });
        for (const r of regions) touch(m, r.ps, r.gva, PER_VCPU, OP_READ);
        expect(m.checker.dataErrors).toBe(0);
      });
    }
  }
});
