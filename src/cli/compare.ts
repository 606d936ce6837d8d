// SPDX-License-Identifier: MIT
// `memvirt run <scenario> --compare key=v1,v2,...`: the same scenario and seed once per value,
// side by side. A key is a scenario path (`vms[0].ram`, `host.swap`, `cost.vm_exit`) or a
// per-VM key (`mmu`, `backing`, `prealloc`, `vcpus`, `ram`) that applies to every VM.

import { parse as parseYaml } from "yaml";
import type { VCPU_STATS, VM_STATS } from "../kvm/stats.js";
import type { MmuCore } from "../hw/mmu_core.js";
import { Engine, RunError } from "../sim/engine.js";
import { VmFailure } from "../kvm/kvm.js";
import type { Report } from "../sim/report.js";
import type { Scenario } from "../sim/scenario_schema.js";
import { ScenarioError, loadScenario } from "../sim/scenario_load.js";
import { UsageError } from "./errors.js";
import { reportCsv } from "./report_csv.js";
import { mib } from "./report_text.js";
import { type Out, bold, fitText, n, table } from "./format.js";
import { startProgress } from "./progress.js";
import { FileSource } from "./file_source.js";
import { type OutputSet, prepareOutputs, requests } from "./output.js";
import { loadChecked } from "./preflight.js";
import {
  EXIT_RUN_FAILED,
  type RunCommandOptions,
  checkOutcome,
  parseCount,
  parseMmuCore,
  runEngine,
  scenarioInputs,
  scenarioText,
} from "./run_cmd.js";
import { COST_EVENTS } from "../sim/cost.js";
import { compareOverrides, PER_VM_KEYS } from "../sim/compare_keys.js";
import { migrationCompareRows } from "./report_migration.js";

export { PER_VM_KEYS };

export interface CompareSpec {
  key: string;
  values: unknown[];
}

/** `mmu=shadow,ept` -> {key: "mmu", values: ["shadow", "ept"]}; values are read as YAML scalars. */
export function parseCompare(text: string): CompareSpec {
  const m = /^([^=]+)=(.+)$/.exec(indexSegments(text.trim()));
  if (!m) throw new UsageError(`--compare: '${text}' is not key=value1,value2; for example --compare mmu=ept,npt`);
  const values = m[2]!.split(",").map((v) => v.trim());
  if (values.length < 2 || values.some((v) => v === ""))
    throw new UsageError(`--compare: give at least two values after '${m[1]}=', separated by commas`);
  const scalar = (v: string): unknown => {
    try {
      return parseYaml(v) as unknown;
    } catch (e) {
      throw new UsageError(
        `--compare: '${v}' is not a YAML value (${(e as Error).message.split("\n")[0]}); values are separated by commas, so compare one key at a time, e.g. vms[0].dirtyLog.manualProtect=false,true`,
      );
    }
  };
  return { key: m[1]!.trim(), values: values.map(scalar) };
}

/** `timeline.0.migrate.bandwidth` is read as `timeline[0].migrate.bandwidth` (the key's numeric segments as indexes). */
function indexSegments(text: string): string {
  const eq = text.indexOf("=");
  if (eq < 0) return text;
  return text.slice(0, eq).replace(/\.(\d+)(?=\.|$)/g, "[$1]") + text.slice(eq);
}

const overridesFor = compareOverrides;

interface Variant {
  label: string;
  report: Report;
}

export async function runCompare(out: Out, file: string | undefined, spec: string, o: RunCommandOptions): Promise<number> {
  const cmp = parseCompare(spec);
  if (o.events !== undefined)
    throw new UsageError(
      `--events with --compare: the event stream is one run's, and --compare makes ${cmp.values.length}; drop --events, or run each variant alone with --events`,
    );
  if (o.sample !== undefined) parseCount("--sample", o.sample, "a number of accesses");
  const { text, name } = scenarioText(file);
  const seed = o.seed === undefined ? undefined : parseCount("--seed", o.seed, "a seed");
  // Every variant validated (traces read, work estimated for all of them) before the first runs.
  const planned: { label: string; scenario: Scenario }[] = [];
  let label = "";
  try {
    const vmCount = loadScenario(text, name, { costEvents: COST_EVENTS.map((e) => e.name) }).vms.length;
    for (const value of cmp.values) {
      label = `${cmp.key}=${String(value)}`;
      const overrides = overridesFor(cmp.key, value, vmCount);
      planned.push({ label, scenario: loadChecked(text, name, { overrides, force: o.force === true, runs: cmp.values.length }) });
    }
  } catch (e) {
    if (e instanceof ScenarioError) {
      out.error(`${label === "" ? "" : `${label}:\n`}${e.format()}\n`);
      return 2;
    }
    throw e;
  }
  const inputs = [...new Set(planned.flatMap((p) => scenarioInputs(file, p.scenario)))];
  const outputs = prepareOutputs(
    requests([
      ["--json", o.json],
      ["--csv", o.csv],
    ]),
    inputs,
    out,
  );
  try {
    return await compareVariants(out, cmp, planned, name, seed, outputs, parseMmuCore(o.mmuCore));
  } finally {
    outputs.discardAll();
  }
}

async function compareVariants(
  out: Out,
  cmp: CompareSpec,
  planned: { label: string; scenario: Scenario }[],
  name: string,
  seed: number | undefined,
  outputs: OutputSet,
  mmuCore: MmuCore | undefined,
): Promise<number> {
  const variants: Variant[] = [];
  const progress = await startProgress(out, "compare", "accesses");
  for (const [i, { label, scenario }] of planned.entries()) {
    try {
      progress.phase(`${label} (${i + 1} of ${planned.length})`);
      const engine = new Engine(scenario, {
        ...(seed !== undefined ? { seed } : {}),
        ...(mmuCore ? { mmuCore } : {}),
        onProgress: (d: number, t: number) => progress.update(d, t),
        openFile: (p: string) => new FileSource(p),
      });
      const report = await runEngine(engine);
      report.scenario = `${name} (${label})`;
      variants.push({ label, report });
    } catch (e) {
      progress.stop();
      if (e instanceof RunError || e instanceof VmFailure) {
        out.error(`memvirt: run failed (${label}): ${e.message}\n`);
        return EXIT_RUN_FAILED;
      }
      throw e;
    }
  }
  progress.stop();
  const json = { memvirt: "compare", scenario: name, key: cmp.key, variants: variants.map((v) => ({ label: v.label, report: v.report })) };
  outputs.get("--json")?.write(`${JSON.stringify(json, null, 2)}\n`);
  outputs.get("--csv")?.write(reportCsv(variants));
  await outputs.commitAll();
  if (!outputs.toStdout) out.write(fitText(out, formatCompare(out, name, cmp.key, variants)));
  let code = 0;
  for (const v of variants) if (checkOutcome(out, v.report, v.label) !== 0) code = EXIT_RUN_FAILED;
  return code;
}

/** KVM counters compared, by their declared names. */
const KVM_ROWS: readonly (keyof typeof VM_STATS | keyof typeof VCPU_STATS)[] = [
  "pf_taken",
  "pf_fixed",
  "pf_spurious",
  "pf_emulate",
  "pf_guest",
  "mmu_pte_write",
  "mmu_flooded",
  "mmu_unsync",
  "mmu_cache_miss",
  "mmu_shadow_zapped",
  "invlpg",
  "tlb_flush",
  "mmu_fault_retries",
  "remote_tlb_flush_requests",
  "pages_4k",
  "pages_2m",
  "pages_1g",
];

/** Rows of the comparison: [label, value of each variant]. */
export function compareRows(variants: Variant[]): (string | number)[][] {
  const sum = (r: Report, k: string) => r.vms.reduce((a, vm) => a + (vm.stats[k] ?? 0), 0);
  const hw = (r: Report, k: "tlbHits" | "tlbMisses" | "walks") => r.vms.reduce((a, vm) => a + vm.hw[k], 0);
  const reasons = new Set<string>();
  for (const v of variants)
    for (const vm of v.report.vms) for (const c of vm.vcpus) for (const k of Object.keys(c.exitReasons)) reasons.add(k);
  const rows: (string | number)[][] = [];
  const row = (label: string, f: (r: Report) => number | string) =>
    rows.push([label, ...variants.map((v) => (typeof f(v.report) === "number" ? n(f(v.report) as number) : f(v.report)))]);
  row("guest accesses", (r) => r.accesses);
  row("exits", (r) => sum(r, "exits"));
  for (const reason of [...reasons].sort()) {
    row(`  exits: ${reason}`, (r) => r.vms.reduce((a, vm) => a + vm.vcpus.reduce((b, c) => b + (c.exitReasons[reason] ?? 0), 0), 0));
  }
  for (const k of KVM_ROWS) row(k, (r) => sum(r, k));
  row("host pgfault", (r) => r.host.vmstat.pgfault ?? 0);
  row("host pswpin / pswpout", (r) => `${n(r.host.vmstat.pswpin ?? 0)} / ${n(r.host.vmstat.pswpout ?? 0)}`);
  // ---- overcommit (issue 15): memory the VMs hold on the host, and zswap when configured
  row("QEMU RSS, all VMs (end)", (r) => mibText(r.vms.reduce((a, vm) => a + vm.qemu.rssBytes, 0)));
  row("host RAM in use (end)", (r) => mibText(r.host.ramBytes - r.host.freeBytes));
  row("host swap in use (end)", (r) => mibText(r.host.swapUsedBytes));
  if (variants.some((v) => v.report.host.ksm)) row("ksm pages_sharing (end)", (r) => r.host.ksm?.pages_sharing ?? 0);
  if (variants.some((v) => v.report.host.zswap)) {
    row("zswap zswpout / zswpin / zswpwb", (r) => {
      const z = r.host.zswap ?? {};
      return `${n(z.zswpout ?? 0)} / ${n(z.zswpin ?? 0)} / ${n(z.zswpwb ?? 0)}`;
    });
    row("zswap pool (end)", (r) => mibText(r.host.zswap?.pool_total_size ?? 0));
  }
  row("TLB misses", (r) => hw(r, "tlbMisses"));
  row("table reads per TLB miss", (r) => {
    const walks = hw(r, "walks");
    const reads = r.vms.reduce((a, vm) => a + vm.hw.references.guestTable + vm.hw.references.nestedTable, 0);
    return walks === 0 ? "-" : (reads / walks).toFixed(2);
  });
  row("cycles", (r) => r.cost.cycles);
  row("native cycles (bare metal)", (r) => (r.native ? r.native.cycles : "-"));
  row("overhead vs native", (r) => (r.overheadRatio === null ? "-" : `${(r.overheadRatio * 100).toFixed(1)}%`));
  row("data errors", (r) => r.check.dataErrors);
  row("invariant violations", (r) => r.check.invariantViolations);
  rows.push(...migrationCompareRows(variants.map((v) => v.report))); // live migration
  return rows;
}

/** Sizes as everywhere in the text output (report_text.ts's mib). */
const mibText = mib;

export function formatCompare(out: Out, name: string, key: string, variants: Variant[]): string {
  const head = ["", ...variants.map((v) => v.label)];
  const t = table(out, head, compareRows(variants), ["left", ...variants.map(() => "right" as const)]);
  return `${bold(out, `memvirt run: ${name}, compared by ${key} (same seed)`)}\n${t}\n`;
}
