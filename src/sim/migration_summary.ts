// SPDX-License-Identifier: MIT
// A live migration in words: the summary's sentence for each migration in the report, and the
// number formats the text report prints its figures with (so a reader can match them to the JSON).

import type { MigrationReport, Report } from "./report.js";
import { int as n } from "./text_format.js";

const MiB = 2 ** 20;

/** Seconds with 3 decimals, milliseconds with 2: as the text report prints them. */
export const secs = (s: number): string => s.toFixed(3);
export const ms = (s: number): string => (s * 1000).toFixed(2);
/** Bytes as MiB with 2 decimals. */
export const mibs = (b: number): string => (b / MiB).toFixed(2);

/** One sentence per migration for the summary ("" without migrations). */
export function migrationSentence(r: Report): string {
  return (r.migrations ?? []).map(sentence).join(" ");
}

function sentence(m: MigrationReport): string {
  const took = `${secs(m.totalSeconds)} s and ${m.sentToRamRatio.toFixed(2)} times its RAM on the link`;
  if (m.mode === "postcopy") {
    const mean = m.postcopyFaults === 0 ? 0 : m.postcopyFaultLatencySeconds / m.postcopyFaults;
    return `${m.vm} moved by post-copy in ${took}, stopped ${ms(m.downtimeSeconds)} ms; ${n(m.postcopyFaults)} post-copy faults waited ${ms(mean)} ms on average for their page, and ${n(m.postcopyBackgroundPages)} pages came in the background.`;
  }
  const rounds = m.iterations.length;
  const end = m.forced
    ? `the last copy was forced after ${rounds} rounds, with ${ms(m.downtimeSeconds)} ms of downtime against a limit of ${ms(m.downtimeLimitSeconds)} ms`
    : `the rest fitted the ${ms(m.downtimeLimitSeconds)} ms downtime limit after ${rounds} rounds (downtime ${ms(m.downtimeSeconds)} ms)`;
  const throttle = m.maxThrottlePercent > 0 ? `, with auto-converge throttling the vCPUs up to ${m.maxThrottlePercent}%` : "";
  return `${m.vm} migrated by pre-copy in ${took}: ${end}${throttle}.`;
}
