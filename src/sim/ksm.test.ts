// SPDX-License-Identifier: MIT
// KSM across two VMs (issue 15): guests that write the same N distinct page contents are merged
// by ksmd into N KSM pages; a guest write after merging breaks COW once, through one notifier
// invalidation and one EPT violation (or shadow fault); every value reads back.
import { describe, expect, test } from "vitest";
import { PAGE_SIZE } from "../hw/addr.js";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { Machine, type ProcState, setStepContent } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

const N = 16;
/**
 * The guests' own all-zero frames (touched by the guest kernel, never written with data) also
 * merge: 4 in all after both wrote their pages (one more KSM page, 3 more sharers), 5 when only
 * vm0 wrote (use_zero_pages test). Measured from this scenario, not derived.
 */
const GUEST_ZERO_SHARING = 3;
const GUEST_ZERO_PAGES = 5;

function machine(mmu: string, useZeroPages = false): Machine {
  const vm = (name: string) => `
  - name: ${name}
    ram: 64MiB
    mmu: ${mmu}
    mergeable: true
    processes: [{name: p0, steps: []}]`;
  return new Machine(
    loadScenario(
      `
seed: 5
host: {ram: 512MiB, ksm: {run: 0, use_zero_pages: ${useZeroPages}}}
vms:${vm("vm0")}${vm("vm1")}
`,
      "ksm.yaml",
    ),
  );
}

function writePages(m: Machine, ps: ProcState, content: "zero" | { dup: number }): number {
  ps.vm.contextSwitch(ps.proc, ps.cpu);
  const gva = ps.vm.mmap(ps.proc, "data", N * PAGE_SIZE);
  setStepContent(ps, content);
  for (let i = 0; i < N; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_WRITE);
  setStepContent(ps, undefined);
  return gva;
}

describe("KSM merges two guests' equal pages", () => {
  for (const mmu of ["ept", "shadow"]) {
    test(`${mmu}: pages_shared = pages_sharing = ${N}, ${N} host pages freed; one COW break, one invalidation, one fault; no value lost`, () => {
      const m = machine(mmu);
      const [a, b] = [m.vms[0]!.procs[0]!, m.vms[1]!.procs[0]!];
      const gva = writePages(m, a, { dup: N });
      expect(writePages(m, b, { dup: N })).toBe(gva);
      const anon0 = m.host.vmstat().nr_anon_pages!;
      const free0 = m.host.nrFreePages;
      m.host.ksm.runFullScans(2);
      const c = m.host.ksm.counters();
      expect(c).toMatchObject({ pages_shared: N + 1, pages_sharing: N + GUEST_ZERO_SHARING, full_scans: 2 });
      expect(anon0 - m.host.vmstat().nr_anon_pages!).toBe(N + GUEST_ZERO_SHARING);
      expect(m.host.nrFreePages - free0).toBe(N + GUEST_ZERO_SHARING);
      // The merge invalidated the sptes: reads fault the KSM pages back in, read-only.
      for (const ps of [a, b]) {
        ps.vm.contextSwitch(ps.proc, ps.cpu);
        for (let i = 0; i < N; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
      }
      const kvm = a.vm.qemu.kvm;
      const before = kvm.statsWithVcpus();
      const starts: string[] = [];
      const stop = m.bus.listen((e) => {
        if (e.kind === "host.notifier.start") starts.push(e.kind);
      });
      a.vm.contextSwitch(a.proc, a.cpu);
      m.runAccess(a, gva, OP_WRITE);
      stop();
      const after = kvm.statsWithVcpus();
      expect(m.host.ksm.counters().ksm_cow_breaks).toBe(1);
      expect(starts.length).toBe(1);
      // One write fault; its gup breaks COW inside KVM's own fault, so the invalidation makes the
      // fault stale (is_page_fault_stale -> RET_PF_RETRY) and the retried access faults once more.
      expect(after.pf_taken! - before.pf_taken!).toBe(2);
      expect(m.host.probe(a.vm.qemu.mm, a.vm.qemu.gpaToHva(kvm.vcpus[0]!.archMmu.accessedGfn(gva) * PAGE_SIZE)).writable).toBe(true);
      for (const ps of [a, b]) {
        ps.vm.contextSwitch(ps.proc, ps.cpu);
        for (let i = 0; i < N; i++) m.runAccess(ps, gva + i * PAGE_SIZE, OP_READ);
      }
      expect(m.checker.dataErrors).toBe(0);
      expect(m.checker.checkStaleMappings()).toBe(0);
      expect(m.checker.checkStructures()).toBe(0);
    });
  }

  test("use_zero_pages: zero-content guest pages merge with the zero page and read back zero", () => {
    const m = machine("ept", true);
    const a = m.vms[0]!.procs[0]!;
    const gva = writePages(m, a, "zero");
    m.host.ksm.runFullScans(2);
    expect(m.host.ksm.counters()).toMatchObject({ ksm_zero_pages: N + GUEST_ZERO_PAGES, pages_shared: 0 });
    a.vm.contextSwitch(a.proc, a.cpu);
    for (let i = 0; i < N; i++) m.runAccess(a, gva + i * PAGE_SIZE, OP_READ);
    expect(m.checker.dataErrors).toBe(0);
    expect(m.checker.valuesRead).toBe(N);
  });
});
