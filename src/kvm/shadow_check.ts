// SPDX-License-Identifier: MIT
// The shadow MMU's own invariants, checked from outside (tests, `memvirt check`): they hold
// between any two KVM operations, whatever the guest and the host did.

import { entryPfn } from "../hw/x86_pte.js";
import type { ShadowMmuPages } from "./shadow_mmu_pages.js";
import { sptepIndex, sptepOf, sptepTable } from "./shadow_page.js";
import { X86_MASKS, isLastSpte, isShadowPresent } from "./spte.js";

/**
 * The shadow MMU's own invariants, for tests and checkers: every rmap entry is a present leaf
 * of a live page translating that gfn, and every present leaf is on its rmap; pages_* count
 * them; parent links go both ways; mmu_unsync, indirect_shadow_pages, n_used_mmu_pages and
 * the write-tracked frames agree with the pages. Returns what is wrong (empty: all holds).
 */
export function checkShadowInvariants(m: ShadowMmuPages): string[] {
  const bad: string[] = [];
  const leaves = [0, 0, 0, 0];
  const onRmap = new Set<number>();
  for (const [key, list] of m.rmap.entries()) {
    const level = key % 4;
    for (const sptep of list) {
      const sp = m.pageOfTable(sptepTable(sptep));
      const idx = sptepIndex(sptep);
      if (sp === undefined) {
        bad.push(`rmap ${key} holds spte ${sptep} of a freed page`);
        continue;
      }
      const lo = m.spteLo(sptep);
      if (!isShadowPresent(lo) || !isLastSpte(X86_MASKS, lo, sp.level) || sp.level !== level || m.rmap.key(level, sp.gfnAt(idx)) !== key)
        bad.push(`rmap ${key}: ${sp} index ${idx} is not a present level-${level} leaf for that gfn`);
      leaves[level]!++;
      onRmap.add(sptep);
    }
  }
  if (leaves[1] !== m.stats.pages_4k || leaves[2] !== m.stats.pages_2m || leaves[3] !== m.stats.pages_1g)
    bad.push(`pages_4k/2m/1g ${m.stats.pages_4k}/${m.stats.pages_2m}/${m.stats.pages_1g}, rmaps hold ${leaves.slice(1).join("/")}`);
  let unsync = 0;
  let indirect = 0;
  let used = 0;
  const tracked = new Map<number, number>();
  for (const sp of m.pages()) {
    if (sp.unsync) unsync++;
    if (!sp.invalid && !sp.direct) {
      indirect++;
      if (sp.level > 1) tracked.set(sp.gfn, (tracked.get(sp.gfn) ?? 0) + 1);
    }
    if (!sp.invalid || sp.rootCount > 0) used++;
    if (sp.invalid && sp.rootCount === 0) bad.push(`${sp} is zapped and unused but not freed`);
    for (let i = 0; i < 512; i++) {
      const sptep = sptepOf(sp.spt, i);
      const lo = m.spteLo(sptep);
      if (!isShadowPresent(lo)) continue;
      if (isLastSpte(X86_MASKS, lo, sp.level)) {
        if (!onRmap.has(sptep)) bad.push(`${sp} index ${i}: a present leaf on no rmap`);
      } else {
        const child = m.pageOfTable(entryPfn(lo, m.spteHi(sptep)));
        if (child === undefined || !child.parentPtes.includes(sptep))
          bad.push(`${sp} index ${i} points at a page that does not list it as a parent`);
      }
    }
    for (const p of sp.parentPtes) {
      const lo = m.spteLo(p);
      if (!isShadowPresent(lo) || entryPfn(lo, m.spteHi(p)) !== sp.spt)
        bad.push(`${sp} lists parent spte ${p}, which does not point at it`);
    }
  }
  if (unsync !== m.stats.mmu_unsync) bad.push(`mmu_unsync ${m.stats.mmu_unsync}, unsync pages ${unsync}`);
  if (indirect !== m.indirectShadowPages) bad.push(`indirect_shadow_pages ${m.indirectShadowPages}, valid indirect pages ${indirect}`);
  if (used !== m.nUsedMmuPages) bad.push(`n_used_mmu_pages ${m.nUsedMmuPages}, pages in use ${used}`);
  if (tracked.size !== m.track.trackedFrames)
    bad.push(`${m.track.trackedFrames} frames write-tracked, ${tracked.size} shadowed as upper tables`);
  for (const gfn of tracked.keys())
    if (!m.track.isWriteTracked(gfn)) bad.push(`gfn 0x${gfn.toString(16)} is shadowed as an upper table but not write-tracked`);
  return bad;
}
