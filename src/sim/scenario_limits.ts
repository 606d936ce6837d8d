// SPDX-License-Identifier: MIT
// Limits of the scenario format: what the model supports and why. Shared by the
// declarations (scenario_schema.ts) and the cross-field checks (scenario_check.ts).

import { PAGE_1G, PAGE_2M } from "../hw/addr.js";

/** memvirt models at most this many vCPUs per VM (KVM allows far more; the model sizes per-vCPU state by it). */
export const MAX_VCPUS = 64;
/** Guest-physical address width memvirt models (MAXPHYADDR 46, as on most Intel servers). */
export const GUEST_PHYS_BITS = 46;
/** Bytes of guest-physical address space: 2^46 = 64 TiB. */
export const GUEST_PHYS_LIMIT = 2 ** GUEST_PHYS_BITS;
/** Host-physical memory is bounded the same way. */
export const HOST_PHYS_LIMIT = 2 ** GUEST_PHYS_BITS;
/** Smallest host: below this, Linux's watermarks alone would fill it. */
export const HOST_RAM_MIN = 1024 * 1024;
/** User virtual address space of a guest process: 2^47 with 4-level tables, 2^56 with 5-level (the lower half). */
export const USER_VA_LIMIT: Readonly<Record<number, number>> = { 4: 2 ** 47, 5: 2 ** 56 };
/** Huge page size of each hugetlb backing; guest RAM must be a multiple of it. */
export const HUGETLB_PAGE: Readonly<Record<string, number>> = { "hugetlb-2m": PAGE_2M, "hugetlb-1g": PAGE_1G };
/** Names of VMs, processes and regions: they appear in reports, CSV columns and --compare keys. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Issue params key marking "not exactly one kind", so the loader can drop it beside an unknown-key issue. */
export const ONE_KEY_PARAM = "memvirtOneKey";
/** The stretch of a run before its first phase boundary (VM setup, prealloc, the steps before the first marker). */
export const START_PHASE = "start";
