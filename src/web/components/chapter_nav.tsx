// SPDX-License-Identifier: MIT
// The story's plain chapters (sim/story_chapters.ts) over the collector's windows: the list
// of chapters, previous/next chapter, a scrubber over the whole run's items with a tick at
// each chapter, and the current chapter's two opening sentences with the paths it tells.

import { useMemo } from "preact/hooks";
import type { StoryItem } from "../protocol.js";
import { type ChapterMap, chapterAt, chapterMap, chapterTarget } from "../story_chapter_map.js";
import { PathRef } from "./story_paths.js";

/** The plain chapters, recomputed as windows arrive (the grouping of a prefix is a prefix of the grouping). */
export function useChapterMap(items: StoryItem[], windows: number[], mmu: string): ChapterMap {
  return useMemo(() => chapterMap(items, windows, mmu), [windows, windows.length, mmu]);
}

/** Which ticks (at fractions `f` of the bar) get their number: each at least 2% from the last numbered one. */
function tickLabels(f: number[]): boolean[] {
  let last = Number.NEGATIVE_INFINITY;
  return f.map((x) => {
    const ok = x - last >= 0.02;
    if (ok) last = x;
    return ok;
  });
}

export function ChapterNav(p: { items: StoryItem[]; map: ChapterMap; pos: number; setPos: (pos: number) => void; mmu: string }) {
  const { items, map, pos, setPos, mmu } = p;
  const cur = chapterAt(map, pos);
  const last = items.length - 1;
  const chapters = map.groups.chapters;
  const prev = chapterTarget(map, pos, -1);
  const next = chapterTarget(map, pos, 1);
  const at = (i: number) => (last <= 0 ? 0 : (i + 1) / (last + 1));
  const c = cur >= 0 ? chapters[cur] : undefined;
  // A tick's number only where it has room (the first chapters of a run are often a few items apart).
  const labelled = tickLabels(map.starts.map(at));
  return (
    <section class="chapter-nav" aria-label="Chapters" data-testid="chapter-nav">
      <ol class="chapter-list" data-testid="story-chapters">
        {chapters.map((ch, k) => (
          <li key={ch.id}>
            <button
              type="button"
              data-chapter={ch.id}
              data-start={map.starts[k]}
              aria-current={k === cur ? "step" : undefined}
              title={ch.title}
              onClick={() => setPos(map.starts[k]!)}
            >
              <span class="chapter-n">{k + 1}</span> {ch.short}
            </button>
          </li>
        ))}
      </ol>
      <div class="chapter-bar">
        <button type="button" data-testid="chapter-prev" disabled={prev === null} onClick={() => prev !== null && setPos(prev)}>
          &lt;&lt; Previous chapter <kbd>[</kbd>
        </button>
        <div class="scrub">
          <input
            type="range"
            data-testid="story-scrub"
            aria-label="Story position"
            aria-valuetext={c ? `chapter ${cur + 1}, ${c.short}: step ${pos + 1} of ${last + 1}` : "before the first step"}
            min={-1}
            max={Math.max(0, last)}
            value={pos}
            disabled={items.length === 0}
            onInput={(e) => setPos(Number((e.target as HTMLInputElement).value))}
          />
          <div class="scrub-ticks" aria-hidden="true">
            {map.starts.map((s, k) => (
              <span
                key={k}
                class={`scrub-tick${k === cur ? " current" : ""}`}
                style={{ left: `calc(8px + (100% - 16px) * ${at(s)})` }}
                title={chapters[k]!.title}
              >
                {labelled[k] ? k + 1 : ""}
              </span>
            ))}
          </div>
        </div>
        <button type="button" data-testid="chapter-next" disabled={next === null} onClick={() => next !== null && setPos(next)}>
          Next chapter <kbd>]</kbd> &gt;&gt;
        </button>
      </div>
      <div class="chapter-intro" data-testid="chapter-intro" data-chapter={c?.id ?? ""} aria-live="polite">
        {c ? (
          <>
            <h3>
              Chapter {cur + 1} of {chapters.length}: {c.title}
            </h3>
            <p>
              {c.intro[0]} {c.intro[1]}
              {c.paths.length > 0 && (
                <span class="chapter-paths">
                  {" "}
                  (
                  {c.paths.map((n, i) => (
                    <span key={n}>
                      {i > 0 && ", "}
                      <PathRef label={`path ${n}`} n={n} mmu={mmu} />
                    </span>
                  ))}
                  )
                </span>
              )}
            </p>
          </>
        ) : (
          <p>
            {chapters.length > 0
              ? `${chapters.length} chapters so far. Press Play, or pick a chapter above.`
              : "The chapters appear as the run reaches them."}
          </p>
        )}
      </div>
    </section>
  );
}
