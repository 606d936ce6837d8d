// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EPT_A, EPT_D, EPT_R, EPT_W, EPT_X, SPTE_MMU_PRESENT } from "../hw/ept_pte.js";
import { PTE_A, PTE_D, PTE_HI_NX, PTE_P, PTE_PS, PTE_RW, PTE_US } from "../hw/x86_pte.js";
import {
  ACC_ALL,
  ACC_EXEC_MASK,
  ACC_USER_MASK,
  X86_MASKS,
  eptMasks,
  isAccessTracked,
  isForbiddenLeafChange,
  isHostWritable,
  isMmuWritable,
  isShadowPresent,
  leafPfn,
  makeNonLeafSpte,
  makeSpte,
  markForAccessTrack,
  restoreAccessTrack,
  spteOut,
} from "./spte.js";

// A frame above 4 GiB, so the hi word carries frame bits beside the software bits.
const PFN = 0x12345678;

describe("spte format (spte.h)", () => {
  it("EPT leaf: host-writable in bit 57, MMU-writable in bit 58, MMU-present in bit 11", () => {
    makeSpte(eptMasks(true), PFN, 1, ACC_ALL, true, true, true);
    const [lo, hi] = spteOut;
    expect(lo & (SPTE_MMU_PRESENT | EPT_R | EPT_W | EPT_X | EPT_A | EPT_D)).toBe(SPTE_MMU_PRESENT | EPT_R | EPT_W | EPT_X | EPT_A | EPT_D);
    expect((hi >>> 25) & 1).toBe(1); // bit 57
    expect((hi >>> 26) & 1).toBe(1); // bit 58
    expect(hi & 0xfffff).toBe(Math.floor(PFN / 2 ** 20));
    expect(isHostWritable(eptMasks(true), lo, hi)).toBe(true);
    expect(isMmuWritable(eptMasks(true), lo, hi)).toBe(true);
    expect(leafPfn(eptMasks(true), lo, hi, 1)).toBe(PFN);
  });

  it("EPT read-only leaf: neither software writable bit, no A/D without EPTP A/D", () => {
    makeSpte(eptMasks(false), PFN, 2, ACC_EXEC_MASK | ACC_USER_MASK, true, true, false);
    const [lo, hi] = spteOut;
    expect(lo & (EPT_W | EPT_A | EPT_D)).toBe(0);
    expect(hi >>> 25).toBe(0);
    expect(leafPfn(eptMasks(false), lo, hi, 2)).toBe(PFN);
  });

  it("x86 leaf: host-writable bit 9, MMU-writable bit 10, NX without exec access", () => {
    makeSpte(X86_MASKS, PFN, 1, ACC_ALL & ~ACC_EXEC_MASK, true, true, true);
    const [lo, hi] = spteOut;
    expect(lo & 0xfff).toBe(SPTE_MMU_PRESENT | (1 << 10) | (1 << 9) | PTE_D | PTE_A | PTE_US | PTE_RW | PTE_P);
    expect(hi & PTE_HI_NX).toBe(PTE_HI_NX);
    // A huge leaf's frame skips the PAT bit.
    makeSpte(X86_MASKS, PFN & ~511, 2, ACC_EXEC_MASK | ACC_USER_MASK, false, false, false);
    expect(spteOut[0] & (PTE_PS | PTE_A | PTE_RW)).toBe(PTE_PS);
    expect(leafPfn(X86_MASKS, spteOut[0] | (1 << 12), spteOut[1], 2)).toBe(PFN & ~511);
  });

  it("access tracking saves R and X in bits 54 and 56 and restores them", () => {
    const m = eptMasks(false);
    makeSpte(m, PFN, 1, ACC_ALL, true, true, true);
    const [lo, hi] = markForAccessTrack(spteOut[0], spteOut[1]);
    expect(lo & (EPT_R | EPT_W | EPT_X)).toBe(0);
    expect(isShadowPresent(lo)).toBe(true);
    expect((hi >>> 22) & 1).toBe(1); // bit 54
    expect((hi >>> 24) & 1).toBe(1); // bit 56
    expect(isAccessTracked(m, lo, hi)).toBe(true);
    const [rlo, rhi] = restoreAccessTrack(lo, hi);
    expect(rlo & (EPT_R | EPT_X)).toBe(EPT_R | EPT_X);
    expect(rhi).toBe(spteOut[1]);
    // The software writable bits survive the round trip (W itself is not saved).
    expect(isMmuWritable(m, rlo, rhi)).toBe(true);
  });

  it("non-leaf sptes are fully permissive pointers", () => {
    const [lo] = makeNonLeafSpte(eptMasks(true), PFN);
    expect(lo & 0xfff).toBe(SPTE_MMU_PRESENT | EPT_R | EPT_W | EPT_X | EPT_A);
    const [xlo] = makeNonLeafSpte(X86_MASKS, PFN);
    expect(xlo & 0xfff).toBe(SPTE_MMU_PRESENT | PTE_P | PTE_RW | PTE_US | PTE_A);
  });

  it("a present leaf may not change frame without a zap", () => {
    expect(isForbiddenLeafChange(5, 6)).toBe(true);
    expect(isForbiddenLeafChange(5, 5)).toBe(false);
    expect(isForbiddenLeafChange(-1, 6)).toBe(false);
    expect(isForbiddenLeafChange(5, -1)).toBe(false);
  });
});
