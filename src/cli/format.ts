// SPDX-License-Identifier: MIT
// Terminal output helpers: tables with colour only on a TTY (cli-table3 colours even when piped).

import { stripVTControlCharacters } from "node:util";
import Table from "cli-table3";
import pc from "picocolors";

export interface Out {
  isTTY: boolean;
  write(s: string): void;
  error(s: string): void;
  /** Bytes to standard output (binary outputs given `-`), resolved once the stream took them. */
  writeBytes?(b: Uint8Array): Promise<void>;
  /** The terminal's width, when standard output is one. */
  columns?: number;
  /** False: no escape codes at all (--no-color); undefined: colour on a TTY unless NO_COLOR is set. */
  color?: boolean;
}

export function stdoutOut(): Out {
  return {
    isTTY: process.stdout.isTTY === true,
    ...(process.stdout.columns ? { columns: process.stdout.columns } : {}),
    write: (s) => process.stdout.write(s),
    error: (s) => process.stderr.write(s),
    writeBytes: (b) => new Promise((resolve, reject) => process.stdout.write(b, (e) => (e ? reject(e) : resolve()))),
  };
}

const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

/** Colour and bold only on a TTY, and never with NO_COLOR (https://no-color.org: set and not empty) or --no-color. */
export function useColor(out: Out): boolean {
  if (out.color !== undefined) return out.color && out.isTTY;
  const nc = process.env.NO_COLOR;
  return out.isTTY && (nc === undefined || nc === "");
}

/** Table width: $COLUMNS, else the terminal's width, else none (a pipe or a file keeps whole rows, as less -S shows them). */
export function termWidth(out: Out): number {
  const env = Number(process.env.COLUMNS);
  if (Number.isInteger(env) && env >= 20) return env;
  if (out.isTTY && out.columns !== undefined && out.columns >= 20) return out.columns;
  return Number.POSITIVE_INFINITY;
}

/** Prose width: the table width, at most 100 columns. */
export function textWidth(out: Out): number {
  return Math.min(100, termWidth(out));
}

const visible = (s: string) => stripVTControlCharacters(s).length;

/**
 * Column widths (padding included) that fit `width` with the borders: left-aligned text columns
 * give up width, widest first; numbers never wrap.
 */
export function fitWidths(head: string[], rows: string[][], align: ("left" | "right")[] | undefined, width: number): number[] {
  const w = head.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ""))) + 2);
  const total = () => w.reduce((a, b) => a + b, 0) + w.length + 1;
  const wrappable = w.map((_, i) => (align?.[i] ?? "left") === "left");
  // Down to 10 columns first, then (a very narrow terminal) to 4.
  for (const floor of [10, 4]) {
    while (total() > width) {
      let widest = -1;
      for (let i = 0; i < w.length; i++) if (wrappable[i] && w[i]! > floor && (widest < 0 || w[i]! > w[widest]!)) widest = i;
      if (widest < 0) break;
      w[widest]!--;
    }
  }
  return w;
}

/** Wraps the lines of `text` wider than the terminal, tables excepted (they are fitted when drawn). */
export function fitText(out: Out, text: string): string {
  const width = termWidth(out);
  if (!Number.isFinite(width)) return text;
  return text
    .split("\n")
    .map((l) => (visible(l) <= width || /^[│┌└├]/.test(l) ? l : wrapCell(l, width)))
    .join("\n");
}

/** Greedy word wrap of one cell at `width` characters; a longer word is cut into pieces. */
export function wrapCell(cell: string, width: number): string {
  if (visible(cell) <= width) return cell;
  // A cell that must wrap loses its colour: escape sequences cannot be split across lines.
  const text = stripVTControlCharacters(cell);
  const lines: string[] = [];
  let line = "";
  for (let w of text.split(/\s+/)) {
    while (w.length > width) {
      if (line !== "") lines.push(line);
      line = "";
      lines.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (line !== "" && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line === "" ? w : `${line} ${w}`;
  }
  if (line !== "") lines.push(line);
  return lines.join("\n");
}

export function table(out: Out, head: string[], rows: (string | number)[][], align?: ("left" | "right")[]): string {
  const color = useColor(out);
  const widths = fitWidths(
    head,
    rows.map((r) => r.map(String)),
    align,
    termWidth(out),
  );
  // Cells are wrapped here (cli-table3 would cut a long word with an ellipsis).
  const cells = rows.map((r) => r.map((c, i) => wrapCell(String(c), widths[i]! - 2)));
  const t = new Table({
    head: (color ? head.map((h) => pc.bold(h)) : head).map((h, i) => wrapCell(h, widths[i]! - 2)),
    style: color ? { head: [], border: ["grey"] } : { head: [], border: [] },
    ...(align ? { colAligns: align } : {}),
    colWidths: widths,
    chars: COMPACT,
  });
  for (const r of cells) t.push(r);
  return t.toString();
}

export function bold(out: Out, s: string): string {
  return useColor(out) ? pc.bold(s) : s;
}

export function dim(out: Out, s: string): string {
  return useColor(out) ? pc.dim(s) : s;
}

export function green(out: Out, s: string): string {
  return useColor(out) ? pc.green(s) : s;
}

export function red(out: Out, s: string): string {
  return useColor(out) ? pc.red(s) : s;
}

export function colorKind(out: Out, kind: string, s: string): string {
  if (!useColor(out)) return s;
  if (kind === "guest-table") return pc.cyan(s);
  if (kind === "nested-table") return pc.magenta(s);
  return pc.green(s);
}

/** Thousands separators for counts. */
export function n(v: number): string {
  return v.toLocaleString("en-US");
}
