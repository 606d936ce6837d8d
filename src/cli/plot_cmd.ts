// SPDX-License-Identifier: MIT
// `memvirt plot <report.json> -o plot.svg|png`: the time series of a report (or of each
// variant of a --compare report) drawn with Vega, rendered to PNG with resvg.

import { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import type { SeriesPoint } from "../sim/report.js";
import { formatPath } from "../sim/scenario_load.js";
// vega and resvg load only when a plot is drawn (they cost most of start-up for every other command).
import type * as vega from "vega";
import { UsageError } from "./errors.js";
import type { Out } from "./format.js";
import { checkOutputPaths, prepareOutputs } from "./output.js";
import { readInputText } from "./preflight.js";
import { MIGRATION_PANEL, type PlotMigration, migrationPoints, migrationsSchema, num } from "./plot_migration.js";

interface Panel {
  title: string;
  yTitle: string;
  /** Series name -> value of a point (and the interval's length in accesses, for rates). */
  series: [string, (p: SeriesPoint, interval: number) => number][];
}

/** Events of an interval per 1,000 guest accesses (sample intervals are not all equal). */
const per1k = (events: number, interval: number) => (interval > 0 ? (events * 1000) / interval : 0);

const MiB = 2 ** 20;

const PANELS: Panel[] = [
  {
    title: "Memory",
    yTitle: "MiB",
    series: [
      ["QEMU RSS", (p) => p.rssBytes / MiB],
      ["host free", (p) => p.freeBytes / MiB],
      ["swap used", (p) => p.swapUsedBytes / MiB],
      // Only in runs with a virtio-balloon (NaN points are left out).
      ["guest free", (p) => (p.guestFreeBytes ?? Number.NaN) / MiB],
      ["balloon", (p) => (p.balloonBytes ?? Number.NaN) / MiB],
    ],
  },
  {
    title: "Faults, exits and swap traffic",
    yTitle: "per 1,000 guest accesses",
    series: [
      ["host faults", (p, i) => per1k(p.faults, i)],
      ["VM exits", (p, i) => per1k(p.exits, i)],
      ["swap-ins", (p, i) => per1k(p.swapIns, i)],
      ["swap-outs", (p, i) => per1k(p.swapOuts, i)],
    ],
  },
];

const pointSchema = z.object({
  accesses: num,
  rssBytes: num,
  freeBytes: num,
  swapUsedBytes: num,
  faults: num,
  exits: num,
  swapIns: num,
  swapOuts: num,
  guestFreeBytes: num.optional(),
  balloonBytes: num.optional(),
});
const seriesSchema = z.array(pointSchema, { error: "not a list of time-series points" });
const runSchema = z.object({ series: seriesSchema, migrations: migrationsSchema });
const compareSchema = z.object({
  memvirt: z.literal("compare"),
  variants: z
    .array(z.object({ label: z.string({ error: "not a label (a string)" }), report: runSchema }), { error: "not a list of variants" })
    .min(1, { error: "no variants" }),
});

/** The runs in a report file: one for `run --json`, one per variant for `run --compare --json`; the first malformed key named. */
export function runsOf(json: unknown, file: string): PlotRun[] {
  const fix = "give the JSON that `memvirt run --json` (or `--compare --json`) wrote";
  const fail = (r: z.ZodSafeParseError<unknown>) => {
    const i = r.error.issues[0]!;
    const where = i.path.length === 0 ? "" : `${formatPath(i.path)}: `;
    const old = i.message === "missing" && (json as { format?: unknown }).format === undefined;
    const hint = old ? " (a report from before format 2, whose keys were renamed: docs/report.md#format-2)" : "";
    return new UsageError(`${file}: ${where}${i.message}${hint}; ${fix}`);
  };
  const isObj = json !== null && typeof json === "object" && !Array.isArray(json);
  if (isObj && (json as { memvirt?: unknown }).memvirt === "compare") {
    const r = compareSchema.safeParse(json);
    if (!r.success) throw fail(r);
    return r.data.variants.map((v) => ({ label: v.label, series: v.report.series as SeriesPoint[], ...migrationsOf(v.report) }));
  }
  if (isObj && "series" in json) {
    const r = runSchema.safeParse(json);
    if (!r.success) throw fail(r);
    return [{ label: "", series: r.data.series as SeriesPoint[], ...migrationsOf(r.data) }];
  }
  throw new UsageError(`${file}: not a memvirt report (no series, not a compare report); ${fix}`);
}

// ---- live migration ----
type PlotRun = { label: string; series: SeriesPoint[]; migrations?: PlotMigration[] };
const migrationsOf = (r: { migrations?: PlotMigration[] | undefined }) => (r.migrations ? { migrations: r.migrations } : {});

const WIDTH = 720;
const HEIGHT = 220;
// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

/** A Vega spec with one line chart per panel, stacked. */
export function plotSpec(runs: PlotRun[], title: string): vega.Spec {
  const values: { x: number; y: number; s: string; panel: number }[] = [];
  PANELS.forEach((panel, pi) => {
    for (const run of runs) {
      run.series.forEach((p, k) => {
        const interval = k === 0 ? 0 : p.accesses - run.series[k - 1]!.accesses;
        if (pi === 1 && interval === 0) return;
        for (const [name, f] of panel.series) {
          const y = f(p, interval);
          if (!Number.isNaN(y)) values.push({ x: p.accesses, y, s: run.label ? `${name} (${run.label})` : name, panel: pi });
        }
      });
    }
  });
  // Live migration: its panel only when a run migrated.
  const migration = migrationPoints(runs, PANELS.length);
  values.push(...migration);
  const panels: (Panel & { xTitle?: string })[] = migration.length > 0 ? [...PANELS, { ...MIGRATION_PANEL, series: [] }] : PANELS;
  const groups = panels.map((panel, pi) => ({
    type: "group",
    encode: {
      enter: {
        x: { value: 0 },
        y: { value: pi * (HEIGHT + 80) },
        width: { value: WIDTH },
        height: { value: HEIGHT },
        clip: { value: false },
      },
    },
    title: { text: panel.title, anchor: "start" },
    data: [{ name: `d${pi}`, source: "all", transform: [{ type: "filter", expr: `datum.panel === ${pi}` }] }],
    scales: [
      { name: "x", type: "linear", range: [0, WIDTH], domain: { data: `d${pi}`, field: "x" } },
      { name: "y", type: "linear", range: [HEIGHT, 0], nice: true, zero: true, domain: { data: `d${pi}`, field: "y" } },
      { name: "c", type: "ordinal", range: PALETTE, domain: { data: `d${pi}`, field: "s" } },
    ],
    axes: [
      { orient: "bottom", scale: "x", title: panel.xTitle ?? "guest accesses", format: "~s" },
      { orient: "left", scale: "y", title: panel.yTitle, format: "~s" },
    ],
    legends: [{ stroke: "c", orient: "right", symbolType: "stroke" }],
    marks: [
      {
        type: "group",
        from: { facet: { name: `f${pi}`, data: `d${pi}`, groupby: "s" } },
        marks: [
          {
            type: "line",
            from: { data: `f${pi}` },
            encode: {
              enter: {
                x: { scale: "x", field: "x" },
                y: { scale: "y", field: "y" },
                stroke: { scale: "c", field: "s" },
                strokeWidth: { value: 1.5 },
              },
            },
          },
        ],
      },
    ],
  }));
  return {
    $schema: "https://vega.github.io/schema/vega/v6.json",
    title: { text: title },
    width: WIDTH,
    height: panels.length * (HEIGHT + 80) - 80,
    padding: 10,
    background: "white",
    data: [{ name: "all", values }],
    marks: groups,
  } as unknown as vega.Spec;
}

export async function renderPlot(runs: PlotRun[], title: string): Promise<string> {
  const { View, parse } = await import("vega");
  const view = new View(parse(plotSpec(runs, title)), { renderer: "none" });
  return view.toSVG();
}

export function plotCommand(out: Out) {
  return new Command("plot")
    .description("draw a report's time series (RSS, free memory, swap, faults and exits per interval) as SVG or PNG")
    .argument("<report>", "the JSON of `memvirt run --json` (or of `--compare`)")
    .option("-o, --output <file>", "plot.svg or plot.png (- for SVG on standard output)", "plot.svg")
    .action(async (file, o) => {
      // The output is checked before the report is read (a bad -o is found first).
      checkOutputPaths([{ option: "-o/--output", path: o.output }], [file]);
      const text = readInputText(file, "report", "give the JSON of `memvirt run --json`");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new UsageError(`${file}: not JSON (${(e as Error).message}); give the JSON of \`memvirt run --json\``);
      }
      const runs = runsOf(json, file);
      if (runs.every((r) => r.series.length === 0))
        throw new UsageError(`${file}: the report has no time series (it was run with --sample 0); run again without --sample 0`);
      const png = /\.png$/i.test(o.output);
      // A device or FIFO gets SVG whatever its name; a file's name says its format.
      const [plan] = checkOutputPaths([{ option: "-o/--output", path: o.output }], [file]);
      if (!png && !/\.svg$/i.test(o.output) && plan!.kind === "file")
        throw new UsageError(`--output ${o.output}: give a name ending in .svg or .png (or - for SVG on standard output)`);
      const outputs = prepareOutputs([{ option: "-o/--output", path: o.output }], [file], out);
      try {
        const scenario = (json as { scenario?: string }).scenario ?? file;
        const svg = await renderPlot(runs, `memvirt: ${scenario}`);
        const data = png
          ? new (await import("@resvg/resvg-js")).Resvg(svg, { background: "white", fitTo: { mode: "width", value: 1600 } })
              .render()
              .asPng()
          : svg;
        outputs.get("-o/--output")!.write(data);
        await outputs.commitAll();
      } finally {
        outputs.discardAll();
      }
      if (outputs.toStdout) return;
      out.write(`wrote ${o.output}\n`);
    });
}
