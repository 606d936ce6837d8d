// SPDX-License-Identifier: MIT
// Write tracking of guest frames (arch/x86/kvm/mmu/page_track.c) and the memslots' huge-page
// disallow counts (lpage_info.disallow_lpage, mmu.c kvm_mmu_gfn_disallow_lpage()).
//
// A frame KVM shadows as an upper-level guest table (PD, PDPT, PML4, PML5) is write-tracked:
// every spte that maps it is made read-only and every guest write to it is emulated. A frame
// shadowed as a leaf table (PT) is only write-protected and may go unsync. Either way no huge
// spte may cover it, so the 2 MiB and 1 GiB regions around it count one more disallow.
//
// simplified: the counts live in maps keyed by gfn (and by huge frame), not in per-memslot arrays.

export class PageTrack {
  /** gfn -> write-track count (gfn_write_track). */
  private readonly writeTrack = new Map<number, number>();
  /** Per level 2 and 3: huge frame index -> disallow_lpage count. */
  private readonly disallow = [new Map<number, number>(), new Map<number, number>()];

  /** __kvm_write_track_add_gfn(): the count, and no huge page over it (the caller write-protects). */
  addGfn(gfn: number): void {
    this.writeTrack.set(gfn, (this.writeTrack.get(gfn) ?? 0) + 1);
    this.disallowLpage(gfn);
  }

  /** __kvm_write_track_remove_gfn(). */
  removeGfn(gfn: number): void {
    const n = this.writeTrack.get(gfn) ?? 0;
    if (n <= 0) throw new Error(`write-track count of gfn 0x${gfn.toString(16)} would go negative`);
    if (n === 1) this.writeTrack.delete(gfn);
    else this.writeTrack.set(gfn, n - 1);
    this.allowLpage(gfn);
  }

  /** kvm_gfn_is_write_tracked(). */
  isWriteTracked(gfn: number): boolean {
    return this.writeTrack.has(gfn);
  }

  /** Frames write-tracked now. */
  get trackedFrames(): number {
    return this.writeTrack.size;
  }

  /** kvm_mmu_gfn_disallow_lpage(). */
  disallowLpage(gfn: number): void {
    for (let l = 0; l < 2; l++) {
      const m = this.disallow[l]!;
      const k = Math.floor(gfn / (l === 0 ? 512 : 512 * 512));
      m.set(k, (m.get(k) ?? 0) + 1);
    }
  }

  /** kvm_mmu_gfn_allow_lpage(). */
  allowLpage(gfn: number): void {
    for (let l = 0; l < 2; l++) {
      const m = this.disallow[l]!;
      const k = Math.floor(gfn / (l === 0 ? 512 : 512 * 512));
      const n = m.get(k) ?? 0;
      if (n <= 1) m.delete(k);
      else m.set(k, n - 1);
    }
  }

  /** Whether a huge spte at `level` (2 or 3) may not cover gfn (lpage_info_slot()->disallow_lpage). */
  lpageDisallowed(gfn: number, level: number): boolean {
    if (level < 2) return false;
    return this.disallow[level - 2]!.has(Math.floor(gfn / (level === 2 ? 512 : 512 * 512)));
  }

  clear(): void {
    this.writeTrack.clear();
    for (const m of this.disallow) m.clear();
  }
}
