// SPDX-License-Identifier: MIT
// Limits of the scenario format: what the model supports and why. Shared by the
// declarations (scenario_schema.ts) and the cross-field checks (scenario_check.ts).

import { PAGE_1G, PAGE_2M, PAGE_SIZE } from "../hw/addr.js";
import { MAX_PHYS_BYTES } from "../hw/phys_mem.js";
import { BELOW_4G_RAM } from "../qemu/vm.js";

/** memvirt models at most this many vCPUs per VM (KVM allows far more; the model sizes per-vCPU state by it). */
export const MAX_VCPUS = 64;
/** Guest-physical address width memvirt models (MAXPHYADDR 46, as on most Intel servers). */
export const GUEST_PHYS_BITS = 46;
/** Bytes of guest-physical address space: 2^46 = 64 TiB. */
export const GUEST_PHYS_LIMIT = 2 ** GUEST_PHYS_BITS;
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

// ---- What the model supports (sizes beyond these fail inside it) ---------------------

/** Host RAM: PhysMem holds up to 2^40 bytes of frames (per-frame typed arrays indexed by pfn). */
export const HOST_RAM_MAX = MAX_PHYS_BYTES;
/** Swap: slot numbers are kept in Int32Arrays (the swap cache, folio->swap), so at most 2^31 slots of 4 KiB. */
export const SWAP_MAX = 2 ** 31 * PAGE_SIZE;
/** Guest RAM: the native baseline's PhysMem spans guest RAM plus the PCI hole below 4 GiB, and holds at most 2^40 bytes. */
export const GUEST_RAM_MAX = MAX_PHYS_BYTES - (4 * PAGE_1G - BELOW_4G_RAM);

// ---- Work a run may plan without --force or a `limits:` key ---------------------------
// Measured on a 2-core x86-64 machine, Node 20 (see work_estimate.ts for how they are used).

/** Guest accesses per second, a uniform random workload over 64 MiB to 1 GiB: 180,000 to 540,000. */
export const ACCESSES_PER_SECOND = 300_000;
/** Resident memory of Node and the model before any VM: about 100 MiB. */
export const BASE_BYTES = 100 * 2 ** 20;
/** Per VM whatever its RAM (vCPU state, TLBs, QEMU and KVM structures): 64 VMs of 1 GiB took about 1.6 MiB each. */
export const BYTES_PER_VM = 2 ** 20;
/** Per 4 KiB page of guest RAM, touched or not (the guest's frame allocator): 1 TiB of guest RAM took 1.1 GiB and 9 s to build. */
export const BYTES_PER_GUEST_PAGE = 5;
/**
 * Per guest page touched (guest, host and EPT tables, rmaps, LRU, checker, native twin): peak RSS
 * of a first touch of 4 GiB minus that of 256 MiB (EPT, 6 GiB VM, 8 GiB host, wasm core, Node 20):
 * 104 MiB for 983040 pages, 111 bytes a page.
 */
export const BYTES_PER_TOUCHED_PAGE = 112;

/** Bounds above which a run is refused unless `--force` or the scenario's `limits:` raises them. */
export const WORK_LIMITS = {
  /** Guest accesses of all runs of the command: 10^9 is about an hour here. */
  accesses: 1_000_000_000,
  /** VMs on the host. */
  vms: 64,
  /** Estimated memory of the model: 4 GiB, the default V8 heap limit on a 64-bit machine with 16 GiB or more. */
  memory: 4 * 2 ** 30,
} as const;
