// SPDX-License-Identifier: MIT
// Live migration in the reports (the JSON's migrations[]): the text section (a table of rounds,
// then the totals) and the CSV's migration rows and columns; the summary sentence and the number
// formats are sim/migration_summary.ts (the page's summary says it too).

import type { MigrationIterationReport, MigrationReport, Report } from "../sim/report.js";
import { mibs, ms, secs } from "../sim/migration_summary.js";
import { type Out, bold, n, table } from "./format.js";

export { migrationSentence, mibs, ms, secs } from "../sim/migration_summary.js";

const HARVEST: Record<MigrationReport["dirtyLog"], string> = {
  get: "KVM_GET_DIRTY_LOG",
  manual: "KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG in chunks",
  ring: "the dirty ring",
};

function heading(m: MigrationReport): string {
  const how = m.mode === "precopy" ? "pre-copy" : "post-copy";
  // A post-copy that switched at once tracked no dirty pages.
  const log = m.mode === "postcopy" && m.iterations.length <= 1 ? "" : `, dirty pages from ${HARVEST[m.dirtyLog]}`;
  return `migration of ${m.vm}: ${how} over ${mibs(m.bandwidthBytesPerSecond)} MiB/s, downtime limit ${ms(m.downtimeLimitSeconds)} ms${log}`;
}

/** The migration section of the text report (none without migrations). */
export function migrationSection(out: Out, r: Report, section: (out: Out, title: string) => string): string[] {
  const lines: string[] = [];
  for (const m of r.migrations ?? []) {
    lines.push(section(out, heading(m)));
    const last = m.iterations.length - 1;
    const rows = m.iterations.map((it, k) => [
      m.mode === "postcopy" && k === last ? `${it.iteration} post-copy` : it.iteration,
      n(it.sentPages),
      n(it.dirtyPages),
      n(Math.round(it.dirtyPagesPerSecond)),
      secs(it.seconds),
      mibs(it.remainingBytes),
      `${it.throttlePercent}%`,
    ]);
    const head = ["round", "pages sent", "dirty pages", "dirty pages/s", "seconds", "remaining MiB", "throttle"];
    lines.push(table(out, head, rows, ["right", "right", "right", "right", "right", "right", "right"]));
    lines.push(...totals(out, m));
  }
  return lines;
}

function totals(out: Out, m: MigrationReport): string[] {
  const lines = [
    bold(out, `status ${m.status}${m.forced ? " (last copy forced by maxIterations)" : ""}`),
    `total time ${secs(m.totalSeconds)} s, downtime ${ms(m.downtimeSeconds)} ms`,
    `pages sent ${n(m.sentPages)} (${n(m.zeroPages)} as zero pages), ${mibs(m.bytes)} MiB; ${m.sentToRamRatio.toFixed(3)} times guest RAM`,
  ];
  if (m.maxThrottlePercent > 0)
    lines.push(`auto-converge: throttle up to ${m.maxThrottlePercent}%, ${secs(m.throttledSeconds)} s of vCPU time taken`);
  if (m.mode === "postcopy") {
    const mean = m.postcopyFaults === 0 ? 0 : m.postcopyFaultLatencySeconds / m.postcopyFaults;
    lines.push(
      `post-copy faults ${n(m.postcopyFaults)}, latency mean ${ms(mean)} ms, max ${ms(m.postcopyFaultLatencyMaxSeconds)} ms; background pages ${n(m.postcopyBackgroundPages)}`,
    );
  }
  return lines;
}

// ---- CSV ----
/** Columns after the standard ones when a report has migrations, named by their JSON path (docs/report.md). */
const ROUND_KEYS = [
  "sentPages",
  "zeroPages",
  "bytes",
  "dirtyPages",
  "dirtyPagesPerSecond",
  "seconds",
  "remainingBytes",
  "throttlePercent",
] as const satisfies readonly (keyof MigrationIterationReport)[];
const TOTAL_KEYS = [
  "sentPages",
  "zeroPages",
  "bytes",
  "totalSeconds",
  "maxThrottlePercent",
  "downtimeSeconds",
  "sentToRamRatio",
  "postcopyFaults",
  "postcopyFaultLatencySeconds",
  "postcopyFaultLatencyMaxSeconds",
  "postcopyBackgroundPages",
] as const satisfies readonly (keyof MigrationReport)[];

export const MIGRATION_CSV_COLUMNS = [
  "migrations.vm",
  "migrations.mode",
  "migrations.iterations.iteration",
  ...ROUND_KEYS.map((k) => `migrations.iterations.${k}`),
  ...TOTAL_KEYS.map((k) => `migrations.${k}`),
];

/** Per migration a row per round (the migrations.iterations.* columns), then a totals row (the migrations.* columns); the standard columns before them, `pad` of them, empty but label, scenario and seed. */
export function migrationCsvRows(label: string, r: Report, pad: number): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const empty = (k: number) => Array<string>(k).fill("");
  const lead = [label, r.scenario, r.seed];
  for (const m of r.migrations ?? []) {
    const head = [...lead, ...empty(pad - lead.length), m.vm, m.mode];
    for (const it of m.iterations) rows.push([...head, it.iteration, ...ROUND_KEYS.map((k) => it[k]), ...empty(TOTAL_KEYS.length)]);
    rows.push([...head, "", ...empty(ROUND_KEYS.length), ...TOTAL_KEYS.map((k) => m[k])]);
  }
  return rows;
}

// ---- --compare ----
/** The compare table's rows of each migration's totals, "-" for a variant without it (none without migrations). */
export function migrationCompareRows(reports: Report[]): (string | number)[][] {
  const vms = [...new Set(reports.flatMap((r) => (r.migrations ?? []).map((m) => m.vm)))];
  const rows: (string | number)[][] = [];
  for (const vm of vms) {
    const row = (label: string, f: (m: MigrationReport) => string) =>
      rows.push([
        `migration ${vm}: ${label}`,
        ...reports.map((r) => {
          const m = r.migrations?.find((x) => x.vm === vm);
          return m === undefined ? "-" : f(m);
        }),
      ]);
    row("rounds", (m) => n(m.iterations.length) + (m.forced ? " (forced)" : ""));
    row("total time (s)", (m) => secs(m.totalSeconds));
    row("downtime (ms)", (m) => ms(m.downtimeSeconds));
    row("pages sent", (m) => n(m.sentPages));
    row("pages sent / guest RAM", (m) => m.sentToRamRatio.toFixed(3));
    row("max throttle", (m) => `${m.maxThrottlePercent}%`);
    if (reports.some((r) => r.migrations?.some((m) => m.vm === vm && m.mode === "postcopy"))) {
      row("post-copy faults", (m) => n(m.postcopyFaults));
      row("post-copy fault latency, mean (ms)", (m) => ms(m.postcopyFaults === 0 ? 0 : m.postcopyFaultLatencySeconds / m.postcopyFaults));
    }
  }
  return rows;
}
