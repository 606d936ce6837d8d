// SPDX-License-Identifier: MIT
// The plain chapters placed on the page's items: each starts at its first window's item, the
// chapter in force at a position, and where previous/next chapter go from anywhere.

import { describe, expect, test } from "vitest";
import type { StoryItem } from "./protocol.js";
import { chapterAt, chapterMap, chapterTarget } from "./story_chapter_map.js";

function win(reason: string): StoryItem {
  const kind = reason.startsWith("first ") ? reason.split(" ")[1]! : "sim.step";
  return { t: "chapter", n: 0, reason, kind, accesses: 0, counts: {}, sums: {}, gauges: {} } as unknown as StoryItem;
}
const ev = { t: "ev", n: 0, e: { kind: "host.free", t: 0 } } as unknown as StoryItem;

// Windows at items 0, 3, 6, 9 and 12: lazy, first touch, fault-in, a workload step (stays in fault-in), pressure.
const items: StoryItem[] = [
  win("first host.mmap"),
  ev,
  ev,
  win("first kvm.exit (reason EPT_VIOLATION)"),
  ev,
  ev,
  win("first host.fault"),
  ev,
  ev,
  win("p0 step 1: touch heap"),
  ev,
  ev,
  win("first host.kswapd_wake"),
  ev,
];
const windows = [0, 3, 6, 9, 12];

describe("plain chapters on the story's items", () => {
  const map = chapterMap(items, windows, "ept");
  test("starts, and the chapter in force", () => {
    expect(map.groups.chapters.map((c) => c.id)).toEqual(["lazy", "first-touch", "fault-in", "pressure"]);
    expect(map.starts).toEqual([0, 3, 6, 12]);
    expect([-1, 0, 2, 3, 8, 9, 11, 12, 13].map((p) => chapterAt(map, p))).toEqual([-1, 0, 0, 1, 2, 2, 2, 3, 3]);
  });
  test("previous and next chapter from anywhere", () => {
    expect(chapterTarget(map, -1, 1)).toBe(0);
    expect(chapterTarget(map, -1, -1)).toBeNull();
    expect(chapterTarget(map, 10, 1)).toBe(12);
    expect(chapterTarget(map, 10, -1)).toBe(3);
    expect(chapterTarget(map, 13, 1)).toBeNull();
    expect(chapterTarget(map, 0, -1)).toBeNull();
  });
});
