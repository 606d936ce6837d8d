// SPDX-License-Identifier: MIT
// The guest kernel layer: its page tables in guest RAM, processes, faults, CR3 switches.

export { GuestFrameAllocator, type GpaRange, type FrameAllocOptions, ORDER_4K, ORDER_2M, ORDER_1G } from "./frame_alloc.js";
export { GuestPgtable, PAGE_TABLE, PAGE_USER_RO, PTE_SPECIAL, PTE_SOFT_DIRTY, leafPfn } from "./pgtable.js";
export { GuestTlb, GuestCpu, MmuGather, TLB_NR_DYN_ASIDS, TLB_SINGLE_PAGE_FLUSH_CEILING } from "./tlb.js";
export { GuestFaultHandler, type FaultResult } from "./fault.js";
export { GuestProcess } from "./process.js";
export { GuestKernel, type GuestKernelOptions, type MmapOptions, type GuestKernelSnapshot } from "./kernel.js";
export { type MmStruct, type Vma, VM_READ, VM_WRITE, VM_EXEC, VM_HUGETLB } from "./mm.js";
export { DEFAULT_MMAP_BASE, MMAP_MIN_ADDR } from "./vma.js";
export { GuestStats, GUEST_COUNTERS, GUEST_PROCESS_COUNTERS, GUEST_EVENT_KINDS } from "./stats.js";
