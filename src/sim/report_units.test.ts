// SPDX-License-Identifier: MIT
// Issue 17 item 4: every quantity of the report states its unit in its key. A numeric key is
// (a) a counter of a declared table (kernel names such as pgfault or pf_fixed keep their names;
// the table gives the unit), (b) ends in a unit, or (c) is on the short list of counts named by
// what they count and of numbers that are no quantity. Walks the reports of the examples that
// between them have every optional part (phases, migrations, balloon, ksm, zswap, selftest guest).

import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { counterList } from "../hw/counters.js";
import { HW_COUNTERS } from "../hw/mmu_stats.js";
import { GUEST_COUNTERS, GUEST_PROCESS_COUNTERS, SELFTEST_COUNTERS } from "../guest/stats.js";
import { GUEST_SWAP_COUNTERS } from "../guest/swap_stats.js";
import { HOST_COUNTERS } from "../host/vmstat.js";
import { KSM_COUNTERS } from "../host/ksm_stats.js";
import { ZSWAP_COUNTERS } from "../host/zswap_stats.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../kvm/stats.js";
import { COST_EVENTS } from "./cost.js";
import { Engine } from "./engine.js";
import { CHECK_FIGURES, HW_FIGURES, QEMU_FIGURES, REFERENCE_FIGURES, VIRT_MAP_FIGURES } from "./report_figures.js";
import { REPORT_FORMAT } from "./report.js";
import { loadScenario } from "./scenario_load.js";

const UNIT_SUFFIXES = ["Bytes", "Pages", "Cycles", "Seconds", "PerSecond", "Percent", "Ratio"];

/** Numeric keys without a unit suffix, each with its reason; nothing else may lack one. */
const UNITLESS_KEYS: Record<string, string> = {
  accesses: "a count of guest accesses (also phases[].startAccesses/endAccesses below)",
  startAccesses: "a count of guest accesses",
  endAccesses: "a count of guest accesses",
  faults: "series[]: host page faults in the interval (pgfault)",
  exits: "series[]: VM exits in the interval",
  pfTaken: "series[]: KVM page faults in the interval (pf_taken)",
  swapIns: "series[]: pages swapped in during the interval (pswpin)",
  swapOuts: "series[]: pages swapped out during the interval (pswpout)",
  discardCalls: "vms[].balloon: QEMU's ram_block_discard_range() calls",
  postcopyFaults: "migrations[]: post-copy page requests",
  format: "no quantity: the report's format number",
  seed: "no quantity: the run's seed",
  id: "no quantity: a vCPU's index",
  iteration: "no quantity: a pre-copy round's number",
  readDigest: "no quantity: a hash of the values the guest read",
};

const names = (...lists: (readonly { name: string }[])[]) => new Set(lists.flat().map((c) => c.name));
const COST = names([...COST_EVENTS]);
/** The maps whose keys are names from a declared table, by their path with array indexes left out. */
const TABLES: Record<string, Set<string>> = {
  "host.vmstat": names(HOST_COUNTERS),
  "phases.host.vmstat": names(HOST_COUNTERS),
  "host.ksm": names(KSM_COUNTERS),
  "host.zswap": names(ZSWAP_COUNTERS),
  "vms.stats": names(VM_COUNTERS, VCPU_COUNTERS),
  "vms.vcpus.stats": names(VCPU_COUNTERS),
  "vms.guest": names(GUEST_COUNTERS, GUEST_SWAP_COUNTERS, GUEST_PROCESS_COUNTERS, SELFTEST_COUNTERS, counterList(VIRT_MAP_FIGURES)),
  "vms.hw": names(HW_COUNTERS, counterList(HW_FIGURES)),
  "vms.hw.references": names(counterList(REFERENCE_FIGURES)),
  "vms.qemu": names(counterList(QEMU_FIGURES)),
  check: names(counterList(CHECK_FIGURES)),
};
for (const p of ["", "vms.", "phases.", "phases.vms."]) {
  for (const c of ["cost", "native"]) {
    TABLES[`${p}${c}.counts`] = COST;
    TABLES[`${p}${c}.breakdown`] = COST;
  }
}
for (const k of ["vms.stats", "vms.vcpus.stats", "vms.guest", "vms.hw", "vms.qemu", "check"]) TABLES[`phases.${k}`] = TABLES[k]!;

/** VMX basic exit reasons and SVM exit codes, in the SDM's and KVM's spelling (EPT_VIOLATION, NPF). */
const EXIT_REASON = /^[A-Z][A-Z0-9_]*$/;

/** Every numeric key of `v` that breaks the rule, as `path: why`. */
function unitlessKeys(v: unknown, path = "", table?: Set<string>): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => unitlessKeys(x, path));
  if (v === null || typeof v !== "object") return [];
  const bad: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const p = path === "" ? k : `${path}.${k}`;
    if (typeof x === "number") {
      if (table !== undefined) {
        if (!table.has(k) && !(k in UNITLESS_KEYS)) bad.push(`${p}: not a name of its counter table`);
      } else if (path.endsWith("exitReasons")) {
        if (!EXIT_REASON.test(k)) bad.push(`${p}: not an exit reason's name`);
      } else if (!UNIT_SUFFIXES.some((s) => k.endsWith(s) || k === s.toLowerCase()) && !(k in UNITLESS_KEYS)) {
        bad.push(`${p}: no unit in the key (end it in ${UNIT_SUFFIXES.join(", ")})`);
      }
    } else bad.push(...unitlessKeys(x, p, TABLES[p]));
  }
  return bad;
}

const EXAMPLES = [
  "fault-in",
  "phases",
  "migration-autoconverge",
  "migration-postcopy",
  "virtio-balloon",
  "ksm",
  "zswap",
  "selftest-demand-paging",
  "reclaim-swap",
];

function report(name: string): unknown {
  const path = new URL(`../../examples/${name}.yaml`, import.meta.url);
  return JSON.parse(JSON.stringify(new Engine(loadScenario(readFileSync(path, "utf8"), `examples/${name}.yaml`)).run()));
}

describe("report keys state their units (format 2)", () => {
  test.each(EXAMPLES)("examples/%s.yaml: every numeric key is a declared counter, has a unit suffix or is allow-listed", (name) => {
    const r = report(name) as { format: number; memvirt: string };
    expect(r.format).toBe(REPORT_FORMAT);
    expect(REPORT_FORMAT).toBe(2);
    expect(unitlessKeys(r)).toEqual([]);
  });

  test("the walker fails on the format-1 keys and on undeclared counter names", () => {
    const old = {
      host: { ram: 1, free: 2, swapUsed: 3, vmstat: { pgfault: 1, pgfaults: 2 } },
      vms: [{ qemu: { rss: 4, rssZeroPage: 5, minFlt: 1 }, overhead: 0.5, vcpus: [{ exitReasons: { EPT_VIOLATION: 1, ept: 2 } }] }],
      migrations: [{ bandwidth: 1, downtime: 2, iterations: [{ iteration: 1, dirtyRate: 3 }] }],
    };
    expect(unitlessKeys(old)).toEqual([
      "host.ram: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
      "host.free: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
      "host.swapUsed: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
      "host.vmstat.pgfaults: not a name of its counter table",
      "vms.qemu.rss: not a name of its counter table",
      "vms.qemu.rssZeroPage: not a name of its counter table",
      "vms.overhead: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
      "vms.vcpus.exitReasons.ept: not an exit reason's name",
      "migrations.bandwidth: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
      "migrations.downtime: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
      "migrations.iterations.dirtyRate: no unit in the key (end it in Bytes, Pages, Cycles, Seconds, PerSecond, Percent, Ratio)",
    ]);
  });

  test("the report's own figures (report_figures.ts) that count bytes say so in their name", () => {
    const figures = [QEMU_FIGURES, HW_FIGURES, REFERENCE_FIGURES, VIRT_MAP_FIGURES, CHECK_FIGURES].flatMap((t) => counterList(t));
    expect(figures.filter((d) => d.unit === "bytes").map((d) => d.name)).toEqual(["rssBytes", "rssZeroPageBytes"]);
  });
});
