// SPDX-License-Identifier: MIT
// The words for KVM's second-level tables by MMU live in sim/ (the narration uses them).
export * from "../sim/mmu_words.js";
