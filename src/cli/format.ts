// SPDX-License-Identifier: MIT
// Terminal output helpers: tables with colour only on a TTY (cli-table3 colours even when piped).

import Table from "cli-table3";
import pc from "picocolors";

export interface Out {
  isTTY: boolean;
  write(s: string): void;
  error(s: string): void;
  /** Bytes to standard output (binary outputs given `-`), resolved once the stream took them. */
  writeBytes?(b: Uint8Array): Promise<void>;
}

export function stdoutOut(): Out {
  return {
    isTTY: process.stdout.isTTY === true,
    write: (s) => process.stdout.write(s),
    error: (s) => process.stderr.write(s),
    writeBytes: (b) => new Promise((resolve, reject) => process.stdout.write(b, (e) => (e ? reject(e) : resolve()))),
  };
}

const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

export function table(out: Out, head: string[], rows: (string | number)[][], align?: ("left" | "right")[]): string {
  const t = new Table({
    head: out.isTTY ? head.map((h) => pc.bold(h)) : head,
    style: out.isTTY ? { head: [], border: ["grey"] } : { head: [], border: [] },
    colAligns: align,
    chars: COMPACT,
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function bold(out: Out, s: string): string {
  return out.isTTY ? pc.bold(s) : s;
}

export function dim(out: Out, s: string): string {
  return out.isTTY ? pc.dim(s) : s;
}

export function colorKind(out: Out, kind: string, s: string): string {
  if (!out.isTTY) return s;
  if (kind === "guest-table") return pc.cyan(s);
  if (kind === "nested-table") return pc.magenta(s);
  return pc.green(s);
}

/** Thousands separators for counts. */
export function n(v: number): string {
  return v.toLocaleString("en-US");
}
