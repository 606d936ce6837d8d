// SPDX-License-Identifier: MIT
// A chart as a standalone SVG file: the same series, colours, dashes and legend as the
// uPlot canvas, drawn from the report's samples (vector, so it scales in a paper or slide).

export interface LegendEntry {
  label: string;
  color: string;
  dash?: number[] | undefined;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function ticks(min: number, max: number, n = 5): number[] {
  if (max <= min) return [min];
  const raw = (max - min) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** An SVG document of `x` against each column of `ys` (null: no sample), with axes, title and legend. */
export function chartSvg(
  title: string,
  unit: string,
  x: number[],
  ys: (number | null)[][],
  legend: LegendEntry[],
  fmt: (v: number) => string,
): string {
  const W = 800;
  const H = 420;
  const L = 70;
  const R = 20;
  const T = 40;
  const legendRows = Math.ceil(legend.length / 3);
  const B = 50 + legendRows * 20;
  const pw = W - L - R;
  const ph = H - T - B;
  const xmin = x[0] ?? 0;
  const xmax = x[x.length - 1] ?? 1;
  const all = ys.flat().filter((v): v is number => v !== null);
  const ymax = Math.max(1e-9, ...all);
  const sx = (v: number) => L + ((v - xmin) / Math.max(1e-9, xmax - xmin)) * pw;
  const sy = (v: number) => T + ph - (v / ymax) * ph;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="24" font-size="16" font-weight="bold" fill="#1b1b1b">${esc(title)}</text>`,
  ];
  for (const t of ticks(0, ymax)) {
    parts.push(`<line x1="${L}" x2="${L + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${L - 6}" y="${sy(t) + 4}" text-anchor="end" fill="#1b1b1b">${esc(fmt(t))}</text>`);
  }
  for (const t of ticks(xmin, xmax))
    parts.push(`<text x="${sx(t)}" y="${T + ph + 16}" text-anchor="middle" fill="#1b1b1b">${esc(fmt(t))}</text>`);
  parts.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#595959"/>`);
  parts.push(`<text x="${L + pw / 2}" y="${T + ph + 34}" text-anchor="middle" fill="#1b1b1b">guest accesses</text>`);
  parts.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle" fill="#1b1b1b">${esc(unit)}</text>`);
  ys.forEach((col, i) => {
    const l = legend[i];
    if (!l) return;
    let d = "";
    col.forEach((v, k) => {
      if (v === null) return;
      d += `${d === "" || col[k - 1] === null ? "M" : "L"}${sx(x[k]!).toFixed(1)},${sy(v).toFixed(1)}`;
    });
    const dash = l.dash ? ` stroke-dasharray="${l.dash.join(" ")}"` : "";
    parts.push(`<path d="${d}" fill="none" stroke="${l.color}" stroke-width="2"${dash}><title>${esc(l.label)}</title></path>`);
  });
  const colW = (W - 2 * L) / 3;
  legend.forEach((l, i) => {
    const lx = L + (i % 3) * colW;
    const ly = T + ph + 50 + Math.floor(i / 3) * 20;
    const dash = l.dash ? ` stroke-dasharray="${l.dash.join(" ")}"` : "";
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${l.color}" stroke-width="3"${dash}/>`);
    parts.push(`<text x="${lx + 30}" y="${ly}" fill="#1b1b1b">${esc(l.label)}</text>`);
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
