// SPDX-License-Identifier: MIT
// A small machine for one translation, shown step by step: guest tables that map one
// address, EPT/NPT tables that map the guest-physical pages involved, and a vCPU MMU.
// `memvirt translate` and the visualizer's translate view are both built on it.

import { hex } from "../hw/addr.js";
import { eptLevelName, formatEptPte } from "../hw/ept_pte.js";
import {
  ACC_FETCH,
  ACC_READ,
  ACC_USER,
  ACC_WRITE,
  XLATE_EPT_MISCONFIG,
  XLATE_EPT_VIOLATION,
  XLATE_GUEST_PF,
  XLATE_NPF,
  XLATE_OK,
  XLATE_PML_FULL,
  type PagingMode,
  type XlateResult,
} from "../hw/mmu.js";
import { TranslateMachine, type TranslateOptions } from "../hw/scratch_machine.js";
import { REF_DATA, REF_GUEST_TABLE, REF_NESTED_TABLE, WalkLog, type WalkStep } from "../hw/walk_log.js";
import { formatX86Pte, x86LevelName } from "../hw/x86_pte.js";

export {
  DEFAULT_TRANSLATE,
  PAGE_BYTES,
  TranslateMachine,
  type AccessName,
  type PageSizeName,
  type TranslateOptions,
} from "../hw/scratch_machine.js";

export interface TranslateStep {
  step: number;
  kind: "guest-table" | "nested-table" | "data";
  /** Level of the table read; 0 for the data access. */
  level: number;
  /** Name of the table read, e.g. "PML4E" or "EPT PDPTE", or "data". */
  table: string;
  /** For nested reads: which guest level's table address is being translated ("gPML4", ... or "data gpa"). */
  translating: string;
  /** Host-physical address read or accessed. */
  hpa: string;
  /** Guest-physical address involved, when there is one. */
  gpa: string | null;
  lo: number;
  hi: number;
  /** The entry decoded (empty for the data access). */
  entry: string;
}

export interface TranslateReport {
  options: TranslateOptions;
  outcome: "ok" | "guest-page-fault" | "ept-violation" | "ept-misconfig" | "npf" | "pml-full";
  hpa: string | null;
  gpa: string | null;
  pageSize: number;
  fault: null | { errorCode?: string; exitQualification?: string; gpa?: string; level: number; reason?: string };
  references: { total: number; guestTable: number; nestedTable: number; data: number };
  /** The formula n*m + n + m for the walk this machine makes cold (4 KiB pages), for comparison. */
  steps: TranslateStep[];
  /** Every access made, in order, with its reference count (the last is the one shown). */
  perAccess: { total: number; guestTable: number; nestedTable: number; data: number }[];
}

function accessBits(o: TranslateOptions): number {
  const kind = o.access === "write" ? ACC_WRITE : o.access === "fetch" ? ACC_FETCH : ACC_READ;
  return kind | (o.user ? ACC_USER : 0);
}

const OUTCOME: Record<XlateResult, TranslateReport["outcome"]> = {
  [XLATE_OK]: "ok",
  [XLATE_GUEST_PF]: "guest-page-fault",
  [XLATE_EPT_VIOLATION]: "ept-violation",
  [XLATE_EPT_MISCONFIG]: "ept-misconfig",
  [XLATE_NPF]: "npf",
  [XLATE_PML_FULL]: "pml-full",
};

function guestLevelTag(level: number): string {
  return level === 0 ? "data gpa" : `g${x86LevelName(level).replace(/E$/, "")}`;
}

function describeStep(s: WalkStep, i: number, paging: PagingMode): TranslateStep {
  if (s.kind === REF_DATA) {
    return {
      step: i + 1,
      kind: "data",
      level: 0,
      table: "data",
      translating: "",
      hpa: hex(s.hpa),
      gpa: s.gpa >= 0 ? hex(s.gpa) : null,
      lo: 0,
      hi: 0,
      entry: "",
    };
  }
  if (s.kind === REF_GUEST_TABLE) {
    return {
      step: i + 1,
      kind: "guest-table",
      level: s.level,
      table: paging === "native" ? x86LevelName(s.level) : `guest ${x86LevelName(s.level)}`,
      translating: "",
      hpa: hex(s.hpa),
      gpa: s.gpa >= 0 ? hex(s.gpa) : null,
      lo: s.lo,
      hi: s.hi,
      entry: formatX86Pte(s.lo, s.hi, s.level),
    };
  }
  const ept = paging === "ept";
  return {
    step: i + 1,
    kind: "nested-table",
    level: s.level,
    table: ept ? eptLevelName(s.level) : `NPT ${x86LevelName(s.level)}`,
    translating: guestLevelTag(s.forLevel),
    hpa: hex(s.hpa),
    gpa: hex(s.gpa),
    lo: s.lo,
    hi: s.hi,
    entry: ept ? formatEptPte(s.lo, s.hi, s.level) : formatX86Pte(s.lo, s.hi, s.level),
  };
}

/** Runs the translation `opts` describes and returns the walk of the last access, step by step. */
export function runTranslate(opts: TranslateOptions): TranslateReport {
  const m = new TranslateMachine(opts);
  const log = new WalkLog();
  m.mmu.log = log;
  const acc = accessBits(opts);
  const perAccess: TranslateReport["perAccess"] = [];
  let r: XlateResult = XLATE_OK;
  for (let i = 0; i < opts.accesses; i++) {
    log.clear();
    r = m.mmu.access(opts.gva, acc);
    perAccess.push({
      total: log.steps.length,
      guestTable: log.count(REF_GUEST_TABLE),
      nestedTable: log.count(REF_NESTED_TABLE),
      data: log.count(REF_DATA),
    });
  }
  const mmu = m.mmu;
  let fault: TranslateReport["fault"] = null;
  if (r === XLATE_GUEST_PF) fault = { errorCode: hex(mmu.errorCode), level: mmu.faultLevel };
  else if (r === XLATE_EPT_VIOLATION) fault = { exitQualification: hex(mmu.exitQual), gpa: hex(mmu.faultGpa), level: mmu.faultLevel };
  else if (r === XLATE_EPT_MISCONFIG) fault = { gpa: hex(mmu.faultGpa), level: mmu.faultLevel, reason: mmu.faultReason };
  else if (r === XLATE_NPF) fault = { errorCode: hex(mmu.errorCode), gpa: hex(mmu.faultGpa), level: mmu.faultLevel };
  return {
    options: opts,
    outcome: OUTCOME[r],
    hpa: r === XLATE_OK ? hex(mmu.hpa) : null,
    gpa: r === XLATE_OK && opts.paging !== "native" ? hex(mmu.gpa) : null,
    pageSize: r === XLATE_OK ? mmu.pageSize : 0,
    fault,
    references: perAccess[perAccess.length - 1]!,
    steps: log.steps.map((s, i) => describeStep(s, i, opts.paging)),
    perAccess,
  };
}

/** Table reads of a cold walk with n guest and m nested levels: n*m + n + m (Bhargava et al. 2008). */
export function coldWalkReads(n: number, m: number): number {
  return n * m + n + m;
}
