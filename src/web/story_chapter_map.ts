// SPDX-License-Identifier: MIT
// Where the story's plain chapters (sim/story_chapters.ts) start among the page's items, which
// one is in force at a position, and where previous/next chapter go.

import { groupWindows } from "../sim/story_chapters.js";
import type { StoryItem } from "./protocol.js";

type Window = Extract<StoryItem, { t: "chapter" }>;

export interface ChapterMap {
  groups: ReturnType<typeof groupWindows>;
  /** The item index each plain chapter starts at. */
  starts: number[];
}

/** The plain chapters of the windows at item indices `windows`. */
export function chapterMap(items: StoryItem[], windows: number[], mmu: string): ChapterMap {
  const groups = groupWindows(
    windows.map((i) => items[i] as Window),
    mmu,
  );
  const starts = groups.chapters.map((_, c) => windows[groups.of.indexOf(c)]!);
  return { groups, starts };
}

/** The plain chapter in force at item `pos` (-1 before the first). */
export function chapterAt(map: ChapterMap, pos: number): number {
  let c = -1;
  for (let k = 0; k < map.starts.length && map.starts[k]! <= pos; k++) c = k;
  return c;
}

/** The item to go to for the previous (-1) or next (+1) chapter from `pos`, or null if there is none. */
export function chapterTarget(map: ChapterMap, pos: number, dir: 1 | -1): number | null {
  const c = chapterAt(map, pos);
  const k = dir > 0 ? c + 1 : c - 1;
  return k >= 0 && k < map.starts.length ? map.starts[k]! : null;
}
