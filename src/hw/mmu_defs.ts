// SPDX-License-Identifier: MIT
// The MMU's vocabulary: access kinds, translation outcomes, and the exit information the
// hardware reports (EPT violation qualification, AMD #NPF EXITINFO1).

import { PFERR_FETCH, PFERR_USER, PFERR_WRITE } from "./x86_pte.js";

export type PagingMode = "native" | "ept" | "npt";

/** Access kinds use the page-fault error-code bits: read is 0. */
export const ACC_READ = 0;
export const ACC_WRITE = PFERR_WRITE;
export const ACC_USER = PFERR_USER;
export const ACC_FETCH = PFERR_FETCH;

/** Outcomes of a translation. */
export const XLATE_OK = 0;
export const XLATE_GUEST_PF = 1;
export const XLATE_EPT_VIOLATION = 2;
export const XLATE_EPT_MISCONFIG = 3;
export const XLATE_NPF = 4;
/** A page-modification log-full VM exit (basic exit reason 62): the log had no room for a dirty flag's gpa. */
export const XLATE_PML_FULL = 5;
export type XlateResult = 0 | 1 | 2 | 3 | 4 | 5;

/** The page-modification log (SDM vol. 3 "Page-Modification Logging"): 512 gpas; GUEST_PML_INDEX starts at 511 and counts down. */
export const PML_LOG_NR_ENTRIES = 512;
export const PML_HEAD_INDEX = 511;

/** EPT violation exit qualification bits (SDM 28.2.1, table 28-7). */
export const EPTQ_READ = 1 << 0;
export const EPTQ_WRITE = 1 << 1;
export const EPTQ_FETCH = 1 << 2;
export const EPTQ_READABLE = 1 << 3;
export const EPTQ_WRITABLE = 1 << 4;
export const EPTQ_EXECUTABLE = 1 << 5;
export const EPTQ_GLA_VALID = 1 << 7;
export const EPTQ_GLA_FINAL = 1 << 8;

/** AMD #NPF EXITINFO1 high bits: fault on the final gpa (bit 32) or on a guest table (bit 33). */
export const NPF_FINAL = 2 ** 32;
export const NPF_GUEST_TABLE = 2 ** 33;
