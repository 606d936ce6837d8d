// SPDX-License-Identifier: MIT
// Live migration in the reports (the JSON's migrations[]): the text section (a table of rounds,
// then the totals) and the CSV's migration rows and columns; the summary sentence and the number
// formats are sim/migration_summary.ts (the page's summary says it too).

import type { MigrationReport, Report } from "../sim/report.js";
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
  return `migration of ${m.vm}: ${how} over ${mibs(m.bandwidth)} MiB/s, downtime limit ${ms(m.downtimeLimit)} ms${log}`;
}

/** The migration section of the text report (none without migrations). */
export function migrationSection(out: Out, r: Report, section: (out: Out, title: string) => string): string[] {
  const lines: string[] = [];
  for (const m of r.migrations ?? []) {
    lines.push(section(out, heading(m)));
    const last = m.iterations.length - 1;
    const rows = m.iterations.map((it, k) => [
      m.mode === "postcopy" && k === last ? `${it.iteration} post-copy` : it.iteration,
      n(it.pagesSent),
      n(it.dirtyPages),
      n(Math.round(it.dirtyRate)),
      secs(it.seconds),
      mibs(it.remaining),
      `${it.throttle}%`,
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
    `total time ${secs(m.totalTime)} s, downtime ${ms(m.downtime)} ms`,
    `pages sent ${n(m.pagesSent)} (${n(m.zeroPages)} as zero pages), ${mibs(m.bytes)} MiB; ${m.ratioToRam.toFixed(3)} times guest RAM`,
  ];
  if (m.maxThrottle > 0) lines.push(`auto-converge: throttle up to ${m.maxThrottle}%, ${secs(m.throttledTime)} s of vCPU time taken`);
  if (m.mode === "postcopy") {
    const mean = m.postcopyFaults === 0 ? 0 : m.postcopyFaultLatency / m.postcopyFaults;
    lines.push(
      `post-copy faults ${n(m.postcopyFaults)}, latency mean ${ms(mean)} ms, max ${ms(m.postcopyFaultLatencyMax)} ms; background pages ${n(m.postcopyBackgroundPages)}`,
    );
  }
  return lines;
}

// ---- CSV ----
/** Columns after the standard ones when a report has migrations (docs/report.md). */
export const MIGRATION_CSV_COLUMNS = [
  "migration.round",
  "migration.mode",
  "migration.pagesSent",
  "migration.zeroPages",
  "migration.bytes",
  "migration.dirtyPages",
  "migration.dirtyRate",
  "migration.seconds",
  "migration.remaining",
  "migration.throttle",
  "migration.downtime",
  "migration.ratioToRam",
  "migration.postcopyFaults",
  "migration.postcopyFaultLatencyMean",
  "migration.postcopyFaultLatencyMax",
  "migration.postcopyBackgroundPages",
];

/** Per migration a row per round, then a "total" row (seconds: the total time); the standard columns before them, `pad` of them empty. */
export function migrationCsvRows(label: string, r: Report, pad: number): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const empty = (k: number) => Array<string>(k).fill("");
  for (const m of r.migrations ?? []) {
    const lead = [label, r.scenario, r.seed, m.vm];
    for (const it of m.iterations) {
      const fig = [it.pagesSent, it.zeroPages, it.bytes, it.dirtyPages, it.dirtyRate, it.seconds, it.remaining, it.throttle];
      rows.push([...lead, ...empty(pad - lead.length), it.iteration, m.mode, ...fig, ...empty(6)]);
    }
    const mean = m.postcopyFaults === 0 ? 0 : m.postcopyFaultLatency / m.postcopyFaults;
    rows.push([
      ...lead,
      ...empty(pad - lead.length),
      "total",
      m.mode,
      m.pagesSent,
      m.zeroPages,
      m.bytes,
      "",
      "",
      m.totalTime,
      "",
      m.maxThrottle,
      m.downtime,
      m.ratioToRam,
      m.postcopyFaults,
      mean,
      m.postcopyFaultLatencyMax,
      m.postcopyBackgroundPages,
    ]);
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
    row("total time (s)", (m) => secs(m.totalTime));
    row("downtime (ms)", (m) => ms(m.downtime));
    row("pages sent", (m) => n(m.pagesSent));
    row("pages sent / guest RAM", (m) => m.ratioToRam.toFixed(3));
    row("max throttle", (m) => `${m.maxThrottle}%`);
    if (reports.some((r) => r.migrations?.some((m) => m.vm === vm && m.mode === "postcopy"))) {
      row("post-copy faults", (m) => n(m.postcopyFaults));
      row("post-copy fault latency, mean (ms)", (m) => ms(m.postcopyFaults === 0 ? 0 : m.postcopyFaultLatency / m.postcopyFaults));
    }
  }
  return rows;
}
