// SPDX-License-Identifier: MIT
// Which implementation of the MMU a vCPU (or the bare-metal twin) runs on. The JS Mmu (mmu.ts)
// is the reference; WasmMmu (wasm_mmu.ts) is the same hardware in the WebAssembly core, equal
// in every result, counter and table write (wasm_mmu.test.ts), and the default: a walk costs
// less in it. Both are an HwMmu, the part of an MMU the layers above use.

import type { MmuConfig } from "./mmu_config.js";
import { Mmu } from "./mmu.js";
import type { XlateResult } from "./mmu_defs.js";
import type { HwStats } from "./mmu_stats.js";
import type { PhysMem } from "./phys_mem.js";
import { WasmMmu } from "./wasm_mmu.js";
import type { WalkLog } from "./walk_log.js";

export type MmuCore = "wasm" | "js";
export const DEFAULT_MMU_CORE: MmuCore = "wasm";

/** One logical processor's MMU as KVM, the guest ports and the simulator drive it. */
export interface HwMmu {
  readonly config: MmuConfig;
  readonly stats: HwStats;
  readonly mem: PhysMem;
  readonly nested: boolean;
  readonly isEpt: boolean;
  log: WalkLog | null;
  // registers
  cr3Frame: number;
  pcid: number;
  pcide: boolean;
  cr0Wp: boolean;
  efeNxe: boolean;
  cr4Pge: boolean;
  smep: boolean;
  smap: boolean;
  nestedRoot: number;
  vpid: number;
  /** Page-modification logging: the VM-execution control, GUEST_PML_INDEX and the log's entries. */
  pmlOn: boolean;
  pmlIndex: number;
  pmlEntry(i: number): number;
  // results of the last translation
  hpa: number;
  gpa: number;
  pageSize: number;
  errorCode: number;
  exitQual: number;
  faultGva: number;
  faultGpa: number;
  faultLevel: number;
  readonly faultReason: string;
  access(gva: number, acc: number): XlateResult;
  probe(gva: number, acc: number): XlateResult;
  accessPhys(gpa: number, acc: number): XlateResult;
  probePhys(gpa: number, acc: number): XlateResult;
  setNestedContext(vpid: number, nestedRoot: number): void;
  loadCr3(rootFrame: number, pcid?: number, noFlush?: boolean): void;
  invlpg(gva: number): void;
  invpcid(type: 0 | 1 | 2 | 3, pcid?: number, gva?: number): void;
  invvpid(type: 0 | 1 | 2 | 3, vpid: number, gva?: number): void;
  invept(type: 1 | 2, nestedRoot?: number): void;
  flushAll(): void;
  tlbLiveEntries(): number;
}

export function createMmu(mem: PhysMem, config: MmuConfig, core: MmuCore = DEFAULT_MMU_CORE): HwMmu {
  return core === "wasm" ? new WasmMmu(mem, config) : new Mmu(mem, config);
}
