// SPDX-License-Identifier: MIT
// Number and address formatting shared by the page and the command line (the model never formats output).

export function hexAddr(v: number | string | undefined): string {
  if (typeof v === "string") return v;
  if (v === undefined || !Number.isFinite(v)) return "?";
  return `0x${v.toString(16)}`;
}

export function int(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 2 });
}
