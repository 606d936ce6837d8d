// SPDX-License-Identifier: MIT
// The memvirt library: what `import { ... } from "memvirt"` gives.

export * from "./hw/addr.js";
export * from "./hw/assoc_cache.js";
export * from "./hw/counters.js";
export * from "./hw/ept_pte.js";
export * from "./hw/events.js";
export * from "./hw/mmu.js";
export * from "./hw/phys_mem.js";
export * from "./hw/scratch_machine.js";
export * from "./hw/walk_log.js";
export * from "./hw/mmu_core.js";
export { XlateBatch, WasmMmu } from "./hw/wasm_mmu.js";
export * from "./hw/x86_pte.js";
export * from "./sim/translate.js";

// ---- Running scenarios (src/api.ts; docs/api.md) ----
export * from "./api.js";
