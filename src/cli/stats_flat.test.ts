// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import { HOST_COUNTERS } from "../host/vmstat.js";
import type { Report } from "../sim/report.js";
import { exitStatRows } from "./kvm_stat.js";
import { runCli } from "./run_cli.js";

const EXAMPLE = new URL("../../examples/reclaim-swap.yaml", import.meta.url).pathname;

describe("run --stats and --kvm-stat", async () => {
  const json = await runCli(["run", EXAMPLE, "--json"]);
  const report = JSON.parse(json.stdout) as Report;

  test("--stats -: every line is `name value # [unit] description`, names unique, values the report's", async () => {
    const r = await runCli(["run", EXAMPLE, "--stats", "-"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    const values = new Map<string, number>();
    for (const l of lines) {
      const m = /^(\S+) +(-?[0-9]+(?:\.[0-9]+)?) # \[(events|pages|bytes|KiB|cycles|references|entries)\] (.+)$/.exec(l);
      expect(m, l).not.toBeNull();
      expect(values.has(m![1]!), m![1]).toBe(false);
      values.set(m![1]!, Number(m![2]));
    }
    // Every host counter and every KVM counter, zero or not, as /proc/vmstat lists them.
    for (const d of HOST_COUNTERS) expect(values.get(`host.${d.name}`), d.name).toBe(report.host.vmstat[d.name] ?? 0);
    for (const d of [...VM_COUNTERS, ...VCPU_COUNTERS])
      expect(values.get(`vm0.kvm.${d.name}`), d.name).toBe(report.vms[0]!.stats[d.name] ?? 0);
    expect(values.get("vm0.vcpu0.exit_reason.EPT_VIOLATION")).toBe(84_133);
    expect(values.get("vm0.cost.cycles")).toBe(report.vms[0]!.cost.cycles);
    // memvirt's own counters say so; the kernel's do not.
    expect(lines.find((l) => l.startsWith("host.rmap_walks "))).toMatch(/# \[events\] \(memvirt\) /);
    expect(lines.find((l) => l.startsWith("host.pgfault "))).not.toContain("(memvirt)");
  });

  test("--kvm-stat: perf kvm stat's columns; samples are the exits by reason, times the cost model's", async () => {
    const r = await runCli(["run", EXAMPLE, "--kvm-stat"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[2]!.trim().split(/ {2,}/)).toEqual(["VM-EXIT", "Samples", "Samples%", "Time%", "Min cycles", "Max cycles", "Avg cycles"]);
    expect(lines[4]!.trim().split(/ +/)).toEqual(["EPT_VIOLATION", "84133", "99.98%", "100.00%", "2600.00", "11341.00", "8445.46"]);
    expect(lines[5]!.trim().split(/ +/)).toEqual(["EXTERNAL_INTERRUPT", "15", "0.02%", "0.00%", "1100.00", "1100.00", "1100.00"]);
    const vm = report.vms[0]!;
    expect(r.stdout).toContain(`Total Samples:${vm.stats.exits},`);
    // The exits' cycles are the cost model's exit and fault-handling cycles, no more, no less.
    const b = vm.cost.breakdown;
    const handled = ["vm_exit", "kvm_page_fault", "host_fault", "swap_in", "emulate", "gpte_access"].reduce((a, k) => a + (b[k] ?? 0), 0);
    expect(exitStatRows(vm).reduce((a, x) => a + x.cycles, 0)).toBeCloseTo(handled, 3);
  });

  test("the summary's faults: first touches, re-faults from swap and from the swap cache, writable-in-place, retries add up to pf_taken", async () => {
    const r = await runCli(["run", EXAMPLE]);
    const text = r.stdout.slice(r.stdout.indexOf("\nsummary\n")).replace(/\s+/g, " ");
    const v = report.host.vmstat;
    const vm = report.vms[0]!;
    const num = (re: RegExp) => Number(re.exec(text)![1]!.replaceAll(",", ""));
    const first = num(/([\d,]+) first touches/);
    const swapped = num(/([\d,]+) re-faults of pages reclaimed earlier/);
    const cached = num(/([\d,]+) re-faults? that found the page still in the swap cache/);
    const wp = num(/([\d,]+) writes? to a page swapped in read-only/);
    const retries = num(/([\d,]+) retries \(mmu_fault_retries\)/);
    expect(swapped).toBe(v.pswpin);
    expect(cached).toBe(v.swap_cache_hit);
    expect(wp).toBe(v.wp_page_reuse);
    expect(retries).toBe(vm.stats.mmu_fault_retries);
    expect(first + swapped + cached + wp + retries).toBe(vm.stats.pf_taken);
    expect(first + cached + wp).toBe(vm.qemu.minFlt);
    // Every anonymous allocation on QEMU's behalf was a first touch (no zero page in this run).
    expect(first).toBe(v.pgalloc_normal! - v.pswpin! - vm.stats.mmu_table_pages! - v.nr_page_table_pages!);
    expect(text).toContain(`told KVM of ${vm.stats.mmu_notifier_invalidations!.toLocaleString("en-US")} invalidations`);
    expect(vm.stats.mmu_notifier_zapped).toBeGreaterThan(0);
  });
}, 120_000);
