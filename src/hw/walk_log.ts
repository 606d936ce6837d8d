// SPDX-License-Identifier: MIT
// The ordered list of memory references one translation made (6502.ts AccessLog, ChampSim's
// page-walk path). Only filled when someone listens: the walker checks for null first.

/** A read of a guest paging-structure entry (or, natively, of any paging-structure entry). */
export const REF_GUEST_TABLE = 0;
/** A read of an EPT/NPT entry while translating a guest-physical address. */
export const REF_NESTED_TABLE = 1;
/** The access itself, at the translated address. */
export const REF_DATA = 2;

export type RefKind = typeof REF_GUEST_TABLE | typeof REF_NESTED_TABLE | typeof REF_DATA;

export interface WalkStep {
  kind: RefKind;
  /** Level of the table read (5..1), 0 for the data access. */
  level: number;
  /** For nested reads: the guest level whose table address is being translated, 0 for the final gpa. */
  forLevel: number;
  /** Host-physical address read (the entry's address, or the data address). */
  hpa: number;
  /** The guest-physical address being translated (nested reads) or read (guest reads); -1 natively. */
  gpa: number;
  lo: number;
  hi: number;
}

export class WalkLog {
  readonly steps: WalkStep[] = [];

  push(kind: RefKind, level: number, forLevel: number, hpa: number, gpa: number, lo: number, hi: number): void {
    this.steps.push({ kind, level, forLevel, hpa, gpa, lo, hi });
  }

  clear(): void {
    this.steps.length = 0;
  }

  count(kind: RefKind): number {
    let n = 0;
    for (const s of this.steps) if (s.kind === kind) n++;
    return n;
  }
}
