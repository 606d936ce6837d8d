// SPDX-License-Identifier: MIT
// The plot's migration panel: the dirty memory left to send after each pre-copy round (the
// JSON's migrations[].iterations[].remaining), against the seconds since the migration started.

import { z } from "zod";

const MiB = 2 ** 20;

/** A finite number; a missing key says so (a report from before format 2 misses every renamed key). */
export const num = z
  .number({ error: (iss) => (iss.input === undefined ? "missing" : `${JSON.stringify(iss.input)} is not a number`) })
  .finite();
/** What the plot reads of a report's migrations[]. */
export const migrationsSchema = z
  .array(
    z.object({
      vm: z.string({ error: "not a VM name (a string)" }),
      iterations: z.array(z.object({ seconds: num, remainingBytes: num }), { error: "not a list of rounds" }),
    }),
    { error: "not a list of migrations" },
  )
  .optional();

export type PlotMigration = NonNullable<z.infer<typeof migrationsSchema>>[number];

export const MIGRATION_PANEL = {
  title: "Migration: dirty memory left after each round",
  yTitle: "MiB",
  xTitle: "seconds since the migration started",
};

/** Points of the panel: x the end of each round (its seconds summed from the start, 0 first), y what remained then in MiB. */
export function migrationPoints(
  runs: { label: string; migrations?: PlotMigration[] }[],
  panel: number,
): { x: number; y: number; s: string; panel: number }[] {
  const values: { x: number; y: number; s: string; panel: number }[] = [];
  for (const run of runs) {
    for (const m of run.migrations ?? []) {
      const s = run.label ? `${m.vm} remaining (${run.label})` : `${m.vm} remaining`;
      let t = 0;
      for (const it of m.iterations) {
        t += it.seconds;
        values.push({ x: t, y: it.remainingBytes / MiB, s, panel });
      }
    }
  }
  return values;
}
