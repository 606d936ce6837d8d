// SPDX-License-Identifier: MIT
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parseCompare } from "./compare.js";
import { runCli } from "./run_cli.js";

const SCENARIO = `seed: 3
host: {ram: 96MiB, swap: 256MiB, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 128MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 10000, writeRatio: 0.5}
`;

function scenarioFile(text = SCENARIO): string {
  const f = join(mkdtempSync(join(tmpdir(), "cmp-")), "s.yaml");
  writeFileSync(f, text);
  return f;
}

describe("memvirt run --compare", () => {
  test("mmu=ept,npt: one column each, same seed, same workload, identical guest-visible results", async () => {
    const r = await runCli(["run", scenarioFile(), "--compare", "mmu=ept,npt", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.variants.map((v: { label: string }) => v.label)).toEqual(["mmu=ept", "mmu=npt"]);
    const [ept, npt] = j.variants.map(
      (v: { report: { vms: { stats: Record<string, number> }[]; check: unknown; accesses: number } }) => v.report,
    );
    expect(npt.accesses).toBe(ept.accesses);
    expect(npt.check).toEqual(ept.check);
    expect(npt.check.readDigest).toBe(ept.check.readDigest);
    expect(ept.check.valuesRead).toBeGreaterThan(0);
    expect(ept.check.dataErrors).toBe(0);
    // Under pressure the fault counts may differ a little: with EPT A/D the CPU's accesses to
    // guest page tables count as writes (SDM 29.3.3.2), NPT's only when it sets an A/D bit.
    expect(Math.abs(npt.vms[0].stats.pf_fixed - ept.vms[0].stats.pf_fixed)).toBeLessThan(ept.vms[0].stats.pf_fixed / 100);
    expect(npt.vms[0].mmu).toBe("npt");
  });

  test("host.ram variants change the pressure: less RAM, more swapping", async () => {
    const r = await runCli(["run", scenarioFile(), "--compare", "host.ram=96MiB,512MiB", "--json"]);
    expect(r.code).toBe(0);
    const [small, big] = JSON.parse(r.stdout).variants.map(
      (v: { report: { host: { vmstat: Record<string, number> } } }) => v.report.host.vmstat,
    );
    expect(small.pswpout).toBeGreaterThan(0);
    expect(big.pswpout).toBe(0);
  });

  test("the text table has a column per value", async () => {
    const r = await runCli(["run", scenarioFile(), "--compare", "mmu=ept,npt"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/mmu=ept\s+│\s+mmu=npt/);
    expect(r.stdout).toMatch(/exits: NPF/);
  });

  test("bad specs and values exit 2 with the reason", async () => {
    expect(() => parseCompare("mmu")).toThrow(/key=value1,value2/);
    expect(() => parseCompare("mmu=ept")).toThrow(/at least two values/);
    const r = await runCli(["run", scenarioFile(), "--compare", "mmu=ept,nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mmu=nope/);
    expect(r.stderr).toMatch(/vms\[0\]\.mmu/);
  });
});

describe("memvirt run --compare tlb", () => {
  test("a bigger TLB misses less on a working set that fits it; the guest sees the same values", async () => {
    const f = scenarioFile(`seed: 2
host: {ram: 512MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 8MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 30000, writeRatio: 0.2}
`);
    const r = await runCli(["run", f, "--compare", "tlb=512,4096", "--json"]);
    expect(r.code).toBe(0);
    const [small, big] = JSON.parse(r.stdout).variants.map(
      (v: { report: { vms: { hw: { tlbMisses: number } }[]; check: { readDigest: number } } }) => v.report,
    );
    expect(big.vms[0].hw.tlbMisses).toBeLessThan(small.vms[0].hw.tlbMisses / 2);
    expect(big.check.readDigest).toBe(small.check.readDigest);
    const bad = await runCli(["run", f, "--compare", "tlb=1000,2048"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/16 ways times a power-of-two number of sets/);
  });
});
