// SPDX-License-Identifier: MIT
// Time-series charts of a report's samples with uPlot: memory (QEMU RSS, host free memory,
// swap used) and events per interval (host faults, VM exits, swap-ins, swap-outs), against
// guest accesses. With two reports the second is drawn dashed. Each chart exports as PNG.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { Report, SeriesPoint } from "../../sim/report.js";
import { chartSvg, type LegendEntry } from "./chart_svg.js";

/** Okabe-Ito colours, with a dash pattern per series so lines differ without colour too. */
const COLORS = ["#0072b2", "#009e73", "#d55e00", "#cc79a7", "#e69f00", "#56b4e9"];
const DASHES: (number[] | undefined)[] = [undefined, [8, 4], [2, 3], [10, 3, 2, 3]];
const MIB = 2 ** 20;

export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  series: { label: string; get: (p: SeriesPoint) => number }[];
}

export const CHARTS: ChartSpec[] = [
  {
    id: "memory",
    title: "Memory",
    unit: "MiB",
    series: [
      { label: "QEMU RSS", get: (p) => p.rssBytes / MIB },
      { label: "host free", get: (p) => p.freeBytes / MIB },
      { label: "swap used", get: (p) => p.swapUsedBytes / MIB },
    ],
  },
  {
    id: "events",
    title: "Events per interval",
    unit: "events",
    series: [
      { label: "host faults", get: (p) => p.faults },
      { label: "VM exits", get: (p) => p.exits },
      { label: "swap-ins", get: (p) => p.swapIns },
      { label: "swap-outs", get: (p) => p.swapOuts },
    ],
  },
];

/** Variant colours for a compare (Okabe-Ito blue and vermillion); a single run colours each series. */
const VARIANT_COLORS = ["#0072b2", "#d55e00"];

/**
 * Colour, dash and label of each drawn line, in uPlot's series order. One run: a colour per series.
 * Two variants: a colour per variant and a dash per series, so a line says its variant by colour
 * and its series by shape; the canvas, the PNG and the SVG all use this one legend.
 */
export function legendFor(spec: ChartSpec, nReports: number, labels: string[]): LegendEntry[] {
  const out: LegendEntry[] = [];
  for (let ri = 0; ri < nReports; ri++) {
    spec.series.forEach((s, si) => {
      const compare = nReports > 1;
      out.push({
        label: compare ? `${s.label} (${labels[ri]})` : s.label,
        color: compare ? VARIANT_COLORS[ri % VARIANT_COLORS.length]! : COLORS[si % COLORS.length]!,
        dash: DASHES[si % DASHES.length],
      });
    });
  }
  return out;
}

/** uPlot data for a chart: x = accesses of the first report; later reports are aligned by sample index. */
function dataFor(spec: ChartSpec, reports: Report[]): uPlot.AlignedData {
  const xs = new Set<number>();
  for (const r of reports) for (const p of r.series) xs.add(p.accesses);
  const x = [...xs].sort((a, b) => a - b);
  const cols: (number | null)[][] = [];
  for (const r of reports) {
    const byX = new Map(r.series.map((p) => [p.accesses, p]));
    for (const s of spec.series) cols.push(x.map((v) => (byX.has(v) ? s.get(byX.get(v)!) : null)));
  }
  return [x, ...cols] as uPlot.AlignedData;
}

export function Chart({ spec, reports, labels }: { spec: ChartSpec; reports: Report[]; labels: string[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const series: uPlot.Series[] = [{ label: "accesses" }];
    for (const l of legendFor(spec, reports.length, labels)) {
      series.push({
        label: l.label,
        stroke: l.color,
        width: 2,
        ...(l.dash ? { dash: l.dash } : {}),
        points: { show: false },
        value: (_u, v) => (v == null ? "-" : v.toLocaleString("en-US", { maximumFractionDigits: 1 })),
      });
    }
    const width = Math.max(280, el.clientWidth || 600);
    const opts: uPlot.Options = {
      width,
      height: 240,
      series,
      scales: { x: { time: false } },
      axes: [
        { label: "guest accesses", values: (_u, ticks) => ticks.map((t) => compact(t)) },
        { label: spec.unit, values: (_u, ticks) => ticks.map((t) => compact(t)), size: 60 },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    const u = new uPlot(opts, dataFor(spec, reports), el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 4) u.setSize({ width: w, height: 240 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [reports, spec]);

  const savePng = () => {
    const u = plot.current;
    if (!u) return;
    download(`memvirt-${spec.id}.png`, chartPng(u, spec.title, labels, legendFor(spec, reports.length, labels)));
  };

  const saveSvg = () => {
    const [x, ...ys] = dataFor(spec, reports) as unknown as [number[], ...(number | null)[][]];
    const title = `memvirt: ${spec.title}${labels.length > 1 ? ` (${labels.join(" vs ")})` : ""}`;
    const svg = chartSvg(title, spec.unit, x, ys, legendFor(spec, reports.length, labels), compact);
    const url = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
    download(`memvirt-${spec.id}.svg`, url);
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  return (
    <figure class="chart" data-testid={`chart-${spec.id}`}>
      <div class="chart-title">
        <figcaption>
          <strong>{spec.title}</strong> ({spec.unit}, sampled over the run)
        </figcaption>
        <span>
          <button type="button" onClick={savePng}>
            Save PNG
          </button>{" "}
          <button type="button" onClick={saveSvg}>
            Save SVG
          </button>
        </span>
      </div>
      <div ref={box} />
    </figure>
  );
}

function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(1));
}

/** The chart's canvas on a white page with its title and a legend drawn in, as a PNG data URL. */
export function chartPng(u: uPlot, title: string, labels: string[], legend: LegendEntry[]): string {
  const src = u.ctx.canvas;
  const pad = 16;
  const lineH = 20;
  const c = document.createElement("canvas");
  c.width = src.width + 2 * pad;
  c.height = src.height + 2 * pad + 28 + lineH * Math.ceil(legend.length / 3);
  const g = c.getContext("2d")!;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, c.width, c.height);
  g.fillStyle = "#1b1b1b";
  g.font = "bold 16px sans-serif";
  g.fillText(`memvirt: ${title}${labels.length > 1 ? ` (${labels.join(" vs ")})` : ""}`, pad, pad + 14);
  g.drawImage(src, pad, pad + 28);
  g.font = "13px sans-serif";
  const colW = Math.floor((c.width - 2 * pad) / 3);
  legend.forEach((l, i) => {
    const x = pad + (i % 3) * colW;
    const y = pad + 28 + src.height + 8 + Math.floor(i / 3) * lineH;
    g.strokeStyle = l.color;
    g.lineWidth = 3;
    g.setLineDash(l.dash ?? []);
    g.beginPath();
    g.moveTo(x, y + 2);
    g.lineTo(x + 18, y + 2);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = "#1b1b1b";
    g.fillText(l.label, x + 24, y + 6);
  });
  return c.toDataURL("image/png");
}

export function download(name: string, href: string): void {
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}
