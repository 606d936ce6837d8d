// SPDX-License-Identifier: MIT
// The host Linux memory manager: public surface for kvm/, qemu/ and sim/.

export { HostKernel, type HostConfig, type ThpMode, faultFailed, DEFAULT_SWAP_IN_CYCLES, DEFAULT_SWAP_OUT_CYCLES } from "./kernel.js";
export { Mm, Vma, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_HUGETLB, VM_NORESERVE } from "./mm_types.js";
export type { MmuNotifier, MmuNotifierRange, MmuNotifyEvent, NotifierMm } from "./mmu_notifier.js";
export { MmError, type MmapOptions, MMAP_BASE, TASK_SIZE } from "./mmap.js";
export type { MadviseAdvice } from "./madvise.js";
export type { HugetlbPageSize } from "./hugetlb.js";
export {
  ACCESS_OOM,
  ACCESS_SEGV,
  ACCESS_SIGBUS,
  type GupResult,
  type PteProbe,
  VM_FAULT_ERROR,
  VM_FAULT_MAJOR,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from "./memory.js";
export { type Watermarks, defaultWatermarks, intSqrt } from "./buddy.js";
export { HOST_COUNTERS, HOST_MM_COUNTERS, HOST_VM_EVENTS, HOST_VM_GAUGES } from "./vmstat.js";
export { HOST_EVENTS, type HostEventMap } from "./host_events.js";
