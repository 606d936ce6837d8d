// SPDX-License-Identifier: MIT
// Sizes, counts and addresses as people write them in scenarios ("512MiB", 1_000_000,
// 0x200000) and back. Binary units only: a "MB" is refused rather than guessed.
// Values are plain numbers below 2^53, as everywhere in the model.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Unit suffixes, largest first, as `formatSize` picks them. */
export const SIZE_UNITS: readonly (readonly [name: string, bytes: number])[] = [
  ["TiB", TiB],
  ["GiB", GiB],
  ["MiB", MiB],
  ["KiB", KiB],
  ["B", 1],
];

/** What a size looks like, for error messages. */
export const SIZE_HINT = "a size like 512MiB: a whole number with B, KiB, MiB, GiB or TiB, or plain bytes";
export const COUNT_HINT = "a count like 1_000_000: a whole number, `_` separators allowed";
export const ADDRESS_HINT = "an address like 0x200000 or 2MiB: a whole number of bytes, hex with 0x";

/** JSON Schema `pattern` for a size written as a string (integers are plain bytes). */
export const SIZE_PATTERN = "^\\s*(0[xX][0-9a-fA-F]+(_[0-9a-fA-F]+)*|[0-9]+(_[0-9]+)*)(\\s*([kKmMgGtT][iI][bB]|[bB]))?\\s*$";
export const COUNT_PATTERN = "^\\s*[0-9]+(_[0-9]+)*\\s*$";

export type ParseResult = { ok: true; value: number } | { ok: false; message: string };

// A number (decimal or 0x hex, `_` between digits), an optional fraction (only to
// suggest the exact spelling), and a unit word.
const SIZE_RE = /^\s*(-?)\s*(0x[0-9a-f]+(?:_[0-9a-f]+)*|[0-9]+(?:_[0-9]+)*)(?:\.([0-9]+))?\s*([a-z]*)\s*$/i;

const UNIT_BYTES: Readonly<Record<string, number>> = { b: 1, kib: KiB, mib: MiB, gib: GiB, tib: TiB };
// Spellings that people mean as binary units but that say something else (or nothing).
const UNIT_GUESS: Readonly<Record<string, string>> = {
  k: "KiB",
  kb: "KiB",
  m: "MiB",
  mb: "MiB",
  g: "GiB",
  gb: "GiB",
  t: "TiB",
  tb: "TiB",
  ki: "KiB",
  mi: "MiB",
  gi: "GiB",
  ti: "TiB",
  byte: "B",
  bytes: "B",
};

function show(input: unknown): string {
  if (typeof input === "string") return JSON.stringify(input);
  if (input === null) return "null";
  if (Array.isArray(input)) return "a list";
  if (typeof input === "object") return "a mapping";
  return String(input);
}

function digits(text: string): number {
  const clean = text.replace(/_/g, "");
  return clean.toLowerCase().startsWith("0x") ? Number.parseInt(clean.slice(2), 16) : Number(clean);
}

function wholeNumber(input: unknown, what: string, hint: string): ParseResult {
  if (typeof input !== "number") return { ok: false, message: `${show(input)} is not ${what}; ${hint}` };
  if (!Number.isFinite(input) || !Number.isInteger(input)) return { ok: false, message: `${show(input)} is not a whole number; ${hint}` };
  if (input < 0) return { ok: false, message: `${show(input)} is negative; ${hint}` };
  if (!Number.isSafeInteger(input)) return { ok: false, message: `${show(input)} is above 2^53 and not exact; ${hint}` };
  return { ok: true, value: input };
}

/** Parse a size: a number of bytes, or a string like "2GiB", "4 KiB", "1_000_000", "0x1000". */
export function tryParseSize(input: unknown): ParseResult {
  if (typeof input !== "string") return wholeNumber(input, "a size", SIZE_HINT);
  const m = SIZE_RE.exec(input);
  if (!m) return { ok: false, message: `${show(input)} is not a size; ${SIZE_HINT}` };
  const [, minus, num, frac, unitText] = m as unknown as [string, string, string, string | undefined, string];
  const unit = unitText.toLowerCase();
  if (num === "0" && unit.startsWith("x")) return { ok: false, message: `${show(input)} is not a size; ${SIZE_HINT}` };
  const scale = unit === "" ? 1 : UNIT_BYTES[unit];
  if (scale === undefined) {
    const guess = UNIT_GUESS[unit];
    const spelled = `${minus}${num}${frac === undefined ? "" : `.${frac}`}`;
    return {
      ok: false,
      message: guess
        ? `unknown unit "${unitText}" in ${show(input)}; did you mean ${spelled}${guess}? (sizes use binary units B, KiB, MiB, GiB, TiB)`
        : `unknown unit "${unitText}" in ${show(input)}; ${SIZE_HINT}`,
    };
  }
  if (minus) return { ok: false, message: `${show(input)} is negative; ${SIZE_HINT}` };
  const whole = digits(num);
  let value = whole * scale;
  if (frac !== undefined) {
    if (num.toLowerCase().startsWith("0x")) return { ok: false, message: `${show(input)} is not a size; ${SIZE_HINT}` };
    value = Number(`${num.replace(/_/g, "")}.${frac}`) * scale;
    const exact = Number.isSafeInteger(value) ? `; write ${formatSize(value)}` : "";
    return { ok: false, message: `${show(input)} is not a whole number of units${exact}; ${SIZE_HINT}` };
  }
  if (!Number.isSafeInteger(value)) return { ok: false, message: `${show(input)} is above 2^53 bytes and not exact; ${SIZE_HINT}` };
  return { ok: true, value };
}

/** Parse a count: a whole number, given as a number or a string with `_` separators. */
export function tryParseCount(input: unknown): ParseResult {
  if (typeof input !== "string") return wholeNumber(input, "a count", COUNT_HINT);
  const m = /^\s*(-?)([0-9]+(?:_[0-9]+)*)\s*$/.exec(input);
  if (!m) return { ok: false, message: `${show(input)} is not a count; ${COUNT_HINT}` };
  if (m[1]) return { ok: false, message: `${show(input)} is negative; ${COUNT_HINT}` };
  const value = digits(m[2]!);
  if (!Number.isSafeInteger(value)) return { ok: false, message: `${show(input)} is above 2^53 and not exact; ${COUNT_HINT}` };
  return { ok: true, value };
}

/** Parse an address: like a size (so "0x200000", 2097152 and "2MiB" are the same address). */
export function tryParseAddress(input: unknown): ParseResult {
  const r = tryParseSize(input);
  if (r.ok) return r;
  return { ok: false, message: r.message.replace(SIZE_HINT, ADDRESS_HINT).replace(" is not a size;", " is not an address;") };
}

function orThrow(r: ParseResult): number {
  if (!r.ok) throw new RangeError(r.message);
  return r.value;
}

/** `tryParseSize`, throwing a RangeError whose message says what is wrong and what is valid. */
export function parseSize(input: string | number): number {
  return orThrow(tryParseSize(input));
}

/** `tryParseCount`, throwing a RangeError whose message says what is wrong and what is valid. */
export function parseCount(input: string | number): number {
  return orThrow(tryParseCount(input));
}

/** Bytes in the largest unit that divides them exactly: 2147483648 -> "2GiB", 1536 -> "1536B" (1.5KiB is not whole). */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0)
    throw new RangeError(`cannot format ${bytes} as a size; a whole number of bytes from 0 to 2^53`);
  if (bytes === 0) return "0B";
  for (const [name, unit] of SIZE_UNITS) {
    if (bytes % unit === 0) return `${bytes / unit}${name}`;
  }
  return `${bytes}B`;
}
