// SPDX-License-Identifier: MIT
// An iterator over a tree of x86-64 or EPT tables (KVM's tdp_iter: for_each_tdp_pte over
// [start, end)), for the cold paths that read whole trees or one address's path: tests, the
// story's trees, zapping and aging. Not for the hot path: it goes through a reader per table.
// Addresses are in 4 KiB frames (a gfn, or a gva page number).
//
// It visits every entry of the range at each level, present or not, and steps into a present
// non-leaf entry unless skip() was called on it or the level is the lowest wanted. In pre-order
// an entry comes before its subtree; in post-order after it, so a zap can free a child table
// once its entries are gone (handle_removed_pt()). The entry under the iterator may be
// rewritten (a zap, an aging pass), and in post-order the table it points to freed; allocating
// a table while iterating is not allowed (PhysMem.words may be replaced).

import { PAGE_SIZE, tableIndex } from "./addr.js";
import { entryPfn } from "./x86_pte.js";

/** A table's 512 entries: lo of entry i at words[off + 2i], hi at words[off + 2i + 1]. */
export interface TableView {
  words: Uint32Array;
  off: number;
}

/**
 * The table in `frame` at `level`, or null if it cannot be read (the iterator then does not
 * step into it). The view stays in use until the iterator leaves that level's table, so a
 * reader may reuse one view per level.
 */
export type TableReader<V extends TableView> = (frame: number, level: number) => V | null;

/** Frames one entry at `level` covers: 1, 512, 512^2... */
export function levelFrames(level: number): number {
  return 512 ** (level - 1);
}

/** The reader of tables kept in PhysMem (one view per level, reused). */
export function physTables(mem: {
  words: Uint32Array;
  isTable(pfn: number): boolean;
  entryOffset(pfn: number, idx: number): number;
}): TableReader<TableView> {
  const views: TableView[] = [];
  for (let l = 0; l < 7; l++) views.push({ words: mem.words, off: 0 });
  return (frame, level) => {
    if (frame < 0 || !mem.isTable(frame)) return null;
    const v = views[level]!;
    v.words = mem.words;
    v.off = mem.entryOffset(frame, 0);
    return v;
  };
}

export class TableIter<V extends TableView = TableView> {
  /** Whether the iterator stands on an entry (false when done, or when the root could not be read). */
  valid = false;
  level = 0;
  /** Index of the entry in its table. */
  index = 0;
  /** First frame the entry covers. */
  base = 0;
  lo = 0;
  hi = 0;
  present = false;
  /** A present entry that maps a page (a PTE, or PS in a PDE or PDPTE). */
  leaf = false;
  /** Table frame and index at each level from the root down to this one (pt_path). */
  readonly tables = new Float64Array(7);
  readonly path = new Int32Array(7);
  /** The last table that could not be read (-1 if none) and its level. */
  unreadable = -1;
  unreadableLevel = 0;
  private readonly views: (V | null)[] = [null, null, null, null, null, null, null];
  private readonly bases = new Float64Array(7);
  private rootLevel = 0;
  private minLevel = 1;
  private start_ = 0;
  private end_ = 0;
  private descend = true;
  private post = false;

  constructor(
    private readonly read: TableReader<V>,
    private readonly isPresent: (lo: number, hi: number) => boolean,
  ) {}

  /** The table the current entry is in. */
  get view(): V {
    return this.views[this.level]!;
  }

  get table(): number {
    return this.tables[this.level]!;
  }

  /**
   * Starts at the first entry of [start, end) in the table tree at `root`; stops above `minLevel`.
   * `post`: a present non-leaf entry comes after its subtree rather than before it.
   */
  start(root: number, rootLevel: number, start: number, end: number, minLevel = 1, post = false): this {
    this.rootLevel = rootLevel;
    this.minLevel = minLevel;
    this.start_ = start;
    this.end_ = end;
    this.unreadable = -1;
    this.descend = true;
    this.post = post;
    this.valid = start < end && this.enter(root, rootLevel, start);
    if (this.valid && post) this.firstBelow();
    return this;
  }

  /** Do not step into the current entry's subtree (pre-order only). */
  skip(): void {
    this.descend = false;
  }

  /** The next entry; valid is false after the last. */
  next(): void {
    if (this.post) {
      this.nextPost();
      return;
    }
    if (this.descend && this.present && !this.leaf && this.level > this.minLevel) {
      if (this.enter(entryPfn(this.lo, this.hi), this.level - 1, Math.max(this.base, this.start_))) return;
    }
    this.descend = true;
    for (;;) {
      const span = levelFrames(this.level);
      const index = this.index + 1;
      const base = this.base + span;
      if (index < 512 && base < this.end_) {
        this.load(index, base);
        return;
      }
      if (this.level === this.rootLevel) {
        this.valid = false;
        return;
      }
      this.level++;
      this.index = this.path[this.level]!;
      this.base = this.bases[this.level]!;
    }
  }

  /** Post-order: the next sibling's subtree first, or the entry above once its table is done. */
  private nextPost(): void {
    const index = this.index + 1;
    const base = this.base + levelFrames(this.level);
    if (index < 512 && base < this.end_) {
      this.load(index, base);
      this.firstBelow();
      return;
    }
    if (this.level === this.rootLevel) {
      this.valid = false;
      return;
    }
    this.level++;
    this.load(this.path[this.level]!, this.bases[this.level]!);
  }

  /** Post-order: down from the current entry to the first entry of the range with no subtree to visit before it. */
  private firstBelow(): void {
    while (this.present && !this.leaf && this.level > this.minLevel) {
      if (!this.enter(entryPfn(this.lo, this.hi), this.level - 1, Math.max(this.base, this.start_))) return;
    }
  }

  /** Steps into the table in `frame` at `level`, on the entry that covers `from`; false if it cannot be read. */
  private enter(frame: number, level: number, from: number): boolean {
    const v = this.read(frame, level);
    if (v === null) {
      this.unreadable = frame;
      this.unreadableLevel = level;
      return false;
    }
    this.views[level] = v;
    this.tables[level] = frame;
    this.level = level;
    const span = levelFrames(level);
    const index = tableIndex(from * PAGE_SIZE, level);
    this.load(index, from - (from % span));
    return true;
  }

  private load(index: number, base: number): void {
    const v = this.views[this.level]!;
    this.index = index;
    this.base = base;
    this.path[this.level] = index;
    this.bases[this.level] = base;
    this.lo = v.words[v.off + 2 * index]!;
    this.hi = v.words[v.off + 2 * index + 1]!;
    this.present = this.isPresent(this.lo, this.hi);
    this.leaf = this.present && (this.level === 1 || (this.level <= 3 && (this.lo & 0x80) !== 0));
  }
}
