// SPDX-License-Identifier: MIT
// The story view: the built-in scenario's event stream, from a real run in the worker,
// played event by event with a narration (plain words, the kernel function, the
// corrections to the common telling) beside live panels computed from the events: counts
// per stage, LRU activity, the swap device and KVM's zaps. The worker keeps windows of
// consecutive events around everything new and counts the rest (story_collect.ts); the
// player walks those windows, and a gap line says what was skipped.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { SimEvent } from "../../hw/events.js";
import { DEFAULT_SCENARIO_YAML } from "../../sim/scenario_load.js";
import { EXAMPLES } from "../examples.js";
import type { ViewProps } from "../app.js";
import { useViewKeys } from "../keys.js";
import { int, pct } from "../format.js";
import { chapterTitle, type Narration, narrate, STAGE_TITLES, type Stage, stageOf, tablePath } from "../narration.js";
import type { StoryItem, StoryRequest } from "../protocol.js";
import { bundledFiles } from "../example_files.js";
import { SimClient } from "../sim_client.js";
import { applyFrameEvent, FRAME_STATES } from "../frame_map.js";
import { addEvent } from "../story_collect.js";
import { type MmuWords, mmuWords } from "../mmu_words.js";
// chapters: plain chapters, scrubber, "path N" explained
import { ChapterNav, useChapterMap } from "../components/chapter_nav.js";
import { chapterTarget } from "../story_chapter_map.js";
import { PathText, PathsPanel } from "../components/story_paths.js";
// ---- cursor (area "cursor"): the panels that follow the current event
import { CursorPanel, CursorTrees, FrameZoom, LruMove, SwapMove, TreeView } from "../components/story_cursor.js";
import { type CursorObjects, cursorAt, type Pin, pinnedFollow } from "../story_cursor.js";
// ---- end cursor
import type { ComponentChildren } from "preact";
import { withTerm } from "../components/term.js";

const SPEEDS = [1, 2, 5, 10, 25, 100, 400];
const LOG_ITEMS = 80;

type Chapter = Extract<StoryItem, { t: "chapter" }>;

interface StoryState {
  items: StoryItem[];
  /** Item indices of chapters. */
  chapters: number[];
  done: boolean;
  events: number;
  error: string;
}

/** Counts, sums and the chapter in force at item `pos` (the chapter's snapshot plus the events kept after it). */
function stateAt(items: StoryItem[], chapters: number[], pos: number) {
  let ci = -1;
  let prev: Chapter | null = null;
  for (const c of chapters) {
    if (c > pos) break;
    if (ci >= 0) prev = items[ci] as Chapter;
    ci = c;
  }
  if (ci < 0) return null;
  const ch = items[ci] as Chapter;
  const counts = { ...ch.counts };
  const sums = { ...ch.sums };
  const frames = ch.frames ? ch.frames.slice() : null;
  let last: SimEvent | null = null;
  const latest: Record<string, SimEvent> = {};
  // Free pages and swap slots: the chapter's gauge, then the latest event (in stream order) that reports them.
  let free: number | null = ch.gauges.nr_free_pages ?? null;
  let swapFree: number | null = ch.gauges.nr_swap_pages ?? null;
  for (let i = ci + 1; i <= pos && i < items.length; i++) {
    const it = items[i]!;
    if (it.t === "ev") {
      addEvent(counts, sums, it.e);
      if (frames) applyFrameEvent(frames, ch.frameStep ?? 1, it.e);
      last = it.e;
      latest[it.e.kind] = it.e;
      if (FREE_KINDS.has(it.e.kind) && typeof it.e.free === "number") free = it.e.free;
      if (SWAP_KINDS.has(it.e.kind) && typeof it.e.free === "number") swapFree = it.e.free;
    }
  }
  // A chapter opened while the machine was being built has no gauges: the last report before it stands.
  for (let i = ci - 1; i >= 0 && (free === null || swapFree === null); i--) {
    const it = items[i]!;
    if (it.t === "chapter") {
      free ??= it.gauges.nr_free_pages ?? null;
      swapFree ??= it.gauges.nr_swap_pages ?? null;
    } else if (it.t === "ev" && typeof it.e.free === "number") {
      if (free === null && FREE_KINDS.has(it.e.kind)) free = it.e.free;
      if (swapFree === null && SWAP_KINDS.has(it.e.kind)) swapFree = it.e.free;
    }
  }
  return { chapter: ch, prev, counts, sums, last, latest, frames, free, swapFree };
}

/** Events whose `free` field is the buddy allocator's free pages after them (__alloc_pages, free_unref_page). */
const FREE_KINDS = new Set(["host.page_alloc", "host.free"]);
/** Events whose `free` field is the free swap slots after them (get_swap_pages, swap_free). */
const SWAP_KINDS = new Set(["host.swap_alloc", "host.swap_free"]);

/** Host pages and swap slots are fixed for a run: any chapter that has the gauges gives them. */
function fixedGauges(items: StoryItem[], chapters: number[]): { hostPages: number; swapTotal: number } {
  for (const c of chapters) {
    const g = (items[c] as Chapter).gauges;
    if (g.host_pages !== undefined) return { hostPages: g.host_pages, swapTotal: g.total_swap_pages ?? 0 };
  }
  return { hostPages: 0, swapTotal: 0 };
}

const MMUS = ["", "ept", "npt", "shadow"] as const;

export function StoryView({ active, initial, setParams }: ViewProps) {
  const [source, setSource] = useState(() => (initial.sc && EXAMPLES[initial.sc] ? initial.sc : "built-in"));
  const [mmu, setMmu] = useState<(typeof MMUS)[number]>(() => MMUS.find((m) => m === initial.mmu) ?? "");
  const text = source === "built-in" ? DEFAULT_SCENARIO_YAML : (EXAMPLES[source] ?? DEFAULT_SCENARIO_YAML);
  const ctxMmu = mmu || (/\bmmu:\s*(ept|npt|shadow)/.exec(text)?.[1] ?? "ept");
  const ctxLevels = /\blevels:\s*5\b/.test(text) ? 5 : 4;
  const [st, setSt] = useState<StoryState>({ items: [], chapters: [], done: false, events: 0, error: "" });
  const [progress, setProgress] = useState({ done: 0, total: 1 });
  const [pos, setPos] = useState(-1);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(5);
  const client = useRef<SimClient | null>(null);
  const acc = useRef<StoryState>({ items: [], chapters: [], done: false, events: 0, error: "" });

  const start = () => {
    client.current?.cancel();
    client.current = new SimClient();
    acc.current = { items: [], chapters: [], done: false, events: 0, error: "" };
    setSt(acc.current);
    setPos(-1);
    setPlaying(false);

    const overrides = mmu ? { overrides: { "vms[0].mmu": mmu } } : {};
    const c = client.current;
    bundledFiles(text).then(
      (files) => {
        if (client.current === c) send(c, { type: "story", text, fileName: source, files, ...overrides });
      },
      (e: Error) => {
        acc.current = { ...acc.current, error: e.message };
        setSt(acc.current);
      },
    );
  };

  const send = (c: SimClient, req: Omit<StoryRequest, "id">) => {
    c.send(req, (r) => {
      const a = acc.current;
      if (r.type === "story-items") {
        for (const it of r.items) {
          if (it.t === "chapter") a.chapters.push(a.items.length);
          a.items.push(it);
        }
        setSt({ ...a });
      } else if (r.type === "progress") setProgress({ done: r.done, total: r.total });
      else if (r.type === "story-done") {
        a.done = true;
        a.events = r.events;
        setSt({ ...a });
        setProgress({ done: r.report.accesses, total: r.report.accesses });
      } else if (r.type === "error" || r.type === "scenario-error") {
        a.error = r.message;
        setSt({ ...a });
      }
    });
  };

  useEffect(() => {
    start();
  }, [source, mmu]);
  useEffect(() => () => client.current?.cancel(), []);

  const items = st.items;
  const last = items.length - 1;

  // The story position in the link: restored once the run has reached it (the same run gives the same items).
  const wantPos = useRef(Number.parseInt(initial.pos ?? "-1", 10));
  useEffect(() => {
    if (wantPos.current >= 0 && items.length > wantPos.current) {
      setPos(wantPos.current);
      wantPos.current = -1;
    }
  }, [items.length]);
  useEffect(() => {
    setParams({
      ...(source !== "built-in" ? { sc: source } : {}),
      ...(mmu ? { mmu } : {}),
      ...(pos >= 0 && wantPos.current < 0 ? { pos: String(pos) } : wantPos.current >= 0 ? { pos: String(wantPos.current) } : {}),
    });
  }, [pos, source, mmu]);

  // Playing at the chosen rate, measured on the clock: at high speeds a tick advances several
  // items, so 400/s is 400 items a second however slowly the browser renders one.
  const lastRef = useRef(last);
  lastRef.current = last;
  useEffect(() => {
    if (!playing || !active) return;
    let before = performance.now();
    let carry = 0;
    const id = setInterval(
      () => {
        const now = performance.now();
        // After a stall (a slow render, a hidden tab) catch up by at most a quarter second's worth.
        carry = Math.min(carry + ((now - before) * speed) / 1000, 1 + speed / 4);
        before = now;
        const k = Math.floor(carry);
        if (k <= 0) return;
        carry -= k;
        setPos((p) => Math.min(lastRef.current, p + k));
      },
      Math.max(16, 1000 / speed),
    );
    return () => clearInterval(id);
  }, [playing, speed, active]);
  useEffect(() => {
    if (playing && pos >= last && st.done) setPlaying(false);
  }, [playing, pos, last, st.done]);

  const now = useMemo(() => stateAt(items, st.chapters, Math.max(0, pos)), [items, st.chapters.length, pos]);
  const current = pos >= 0 ? items[pos] : undefined;
  const chapterIdx = st.chapters.filter((c) => c <= pos).length - 1;
  const chMap = useChapterMap(items, st.chapters, ctxMmu);
  const cursor = useMemo(() => cursorAt(items, pos, ctxMmu), [items, items.length, pos, ctxMmu]);
  const [pin, setPin] = useState<Pin | null>(null);
  const pinned = useMemo(() => (pin ? pinnedFollow(items, pos, pin) : null), [items, items.length, pos, pin]);

  useViewKeys(active, (e: KeyboardEvent) => {
    if (e.key === "ArrowRight" || e.key === ".") setPos((p) => Math.min(last, p + 1));
    else if (e.key === "ArrowLeft" || e.key === ",") setPos((p) => Math.max(-1, p - 1));
    else if (e.key === "p" || e.key === "P") setPlaying((x) => !x);
    else if (e.key === "n" || e.key === "N") jumpChapter(1);
    else if (e.key === "b" || e.key === "B") jumpChapter(-1);
    else if (e.key === "[" || e.key === "]") {
      const to = chapterTarget(chMap, pos, e.key === "]" ? 1 : -1);
      if (to !== null) setPos(to);
    } else if (e.key === "Home") setPos(-1);
    else if (e.key === "End") setPos(last);
    else return false;
    return true;
  });

  const jumpChapter = (dir: 1 | -1) => {
    const cs = st.chapters;
    const target = dir > 0 ? cs.find((c) => c > pos) : [...cs].reverse().find((c) => c < pos);
    if (target !== undefined) setPos(target);
  };

  return (
    <div>
      <h2>Story: {source === "built-in" ? "a guest bigger than its host, into swap and back" : source}</h2>
      <p class="lead">
        A real run in the worker: every event is counted, and windows of consecutive events are kept around everything new. Keys: arrows
        step, P play/pause, ] / [ next/previous chapter, N/B next/previous section, ? all keys.
      </p>
      <div class="controls">
        <label>
          Scenario
          <select value={source} onChange={(e) => setSource((e.target as HTMLSelectElement).value)}>
            <option value="built-in">built-in story</option>
            {Object.keys(EXAMPLES).map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Paging
          <select value={mmu} onChange={(e) => setMmu((e.target as HTMLSelectElement).value as (typeof MMUS)[number])}>
            <option value="">as the scenario says</option>
            <option value="ept">EPT</option>
            <option value="npt">NPT</option>
            <option value="shadow">shadow paging</option>
          </select>
        </label>
      </div>
      <fieldset class="player">
        <legend class="visually-hidden">Story player</legend>
        <button type="button" onClick={() => setPos(-1)}>
          |&lt; Start
        </button>
        <button type="button" onClick={() => setPos((p) => Math.max(-1, p - 1))}>
          &lt; Back
        </button>
        <button
          type="button"
          class="primary"
          data-testid="story-play"
          onClick={() => setPlaying((x) => !x)}
          disabled={items.length === 0 || st.error !== ""}
        >
          {playing ? "Pause" : "Play"}
        </button>
        <button type="button" data-testid="story-step" onClick={() => setPos((p) => Math.min(last, p + 1))}>
          Step &gt;
        </button>
        <button type="button" onClick={() => jumpChapter(1)}>
          Next section &gt;&gt;
        </button>
        <label class="inline">
          Speed{" "}
          <select data-testid="story-speed" value={String(speed)} onChange={(e) => setSpeed(Number((e.target as HTMLSelectElement).value))}>
            {SPEEDS.map((v) => (
              <option key={v} value={String(v)}>
                {v} steps/s
              </option>
            ))}
          </select>
        </label>
        <label class="inline">
          Section{" "}
          <select
            data-testid="story-chapter"
            value={chapterIdx >= 0 ? String(st.chapters[chapterIdx]) : ""}
            onChange={(e) => setPos(Number((e.target as HTMLSelectElement).value))}
            style={{ maxWidth: "360px" }}
          >
            <option value="" disabled>
              (choose a chapter)
            </option>
            {chMap.groups.chapters.map((pc, k) => (
              <optgroup key={pc.id} label={`${k + 1}. ${pc.short}`}>
                {st.chapters.map((c, i) => {
                  const ch = items[c] as Chapter;
                  return chMap.groups.of[i] === k ? (
                    <option key={c} value={String(c)} data-reason={ch.reason}>
                      {i + 1}. {chapterTitle(ch.reason, ch.kind, ctxMmu)}
                    </option>
                  ) : null;
                })}
              </optgroup>
            ))}
          </select>
        </label>
      </fieldset>
      <ChapterNav items={items} map={chMap} pos={pos} setPos={setPos} mmu={ctxMmu} />
      <div
        class="story-status"
        data-testid="story-status"
        data-state={st.error ? "error" : st.done ? "done" : "running"}
        aria-live="polite"
      >
        {st.error ? (
          <span class="fail">{st.error}</span>
        ) : st.done ? (
          <>
            Run complete: {int(st.events)} events, {int(items.filter((i) => i.t === "ev").length)} kept for the story in{" "}
            {chMap.starts.length} chapters of {st.chapters.length} sections.{" "}
            <button type="button" onClick={start}>
              Run again
            </button>
          </>
        ) : (
          <>
            Running the scenario: <progress max={progress.total} value={progress.done} aria-label="Story run progress" />{" "}
            {pct(progress.done, progress.total)} of its accesses; {int(items.length)} items so far (you can start playing now).
          </>
        )}
      </div>
      <div class="story-layout">
        <div>
          <Now item={current} chapter={now?.chapter ?? null} pos={pos} mmu={ctxMmu} levels={ctxLevels} />
          <CursorPanel cursor={cursor} words={mmuWords(ctxMmu)} />
          <Log items={items} pos={pos} mmu={ctxMmu} />
          {cursor?.follow ? (
            <CursorTrees cursor={cursor} words={mmuWords(ctxMmu)} pin={pin} pinned={pinned} onPin={setPin} />
          ) : (
            <TreesPanel chapter={now?.chapter ?? null} prev={now?.prev ?? null} />
          )}
          {now?.frames && <FrameMapPanel cells={now.frames} step={now.chapter.frameStep ?? 1} onPick={(pfn) => setPin({ pfn })} />}
          {now?.frames && cursor?.objects.pfn !== undefined && (
            <FrameZoom cells={now.frames} step={now.chapter.frameStep ?? 1} pfn={cursor.objects.pfn} onPick={(pfn) => setPin({ pfn })} />
          )}
          <PathsPanel mmu={ctxMmu} />
        </div>
        <div>
          {now && (
            <Panels
              counts={now.counts}
              sums={now.sums}
              chapter={now.chapter}
              free={now.free}
              swapFree={now.swapFree}
              fixed={fixedGauges(items, st.chapters)}
              words={mmuWords(ctxMmu)}
              cursor={cursor?.objects ?? null}
            />
          )}
        </div>
      </div>
    </div>
  );
}

function Now({
  item,
  chapter,
  pos,
  mmu,
  levels,
}: {
  item: StoryItem | undefined;
  chapter: Chapter | null;
  pos: number;
  mmu: string;
  levels: number;
}) {
  if (!item) {
    return (
      <div class="now" data-testid="story-now">
        <p class="text">Press Play (or Step) to follow the run from its first event, as QEMU sets up guest RAM.</p>
      </div>
    );
  }
  if (item.t === "gap") {
    return (
      <div class="now" data-testid="story-now" data-kind="gap">
        <p class="text">{gapText(item)}</p>
      </div>
    );
  }
  if (item.t === "chapter") {
    return (
      <div class="now" data-testid="story-now" data-kind="chapter">
        <p class="text">
          <strong>{chapterTitle(item.reason, item.kind, mmu)}</strong>
        </p>
        <p>
          Event {int(item.n + 1)} of the run, after {int(item.accesses)} guest accesses.
        </p>
      </div>
    );
  }
  const nar: Narration = narrate(item.e, { mmu });
  const path = tablePath(item.e, { mmu, levels });
  return (
    <div class="now" data-testid="story-now" data-kind={item.e.kind} data-pos={pos}>
      <div>
        <span class={`stage-badge stage-${nar.stage}`}>
          <PathText text={STAGE_TITLES[nar.stage]} mmu={mmu} />
        </span>
        <code>{item.e.kind}</code> <span style={{ color: "var(--muted)", fontSize: "13px" }}>event {int(item.n + 1)}</span>
        {chapter && <span style={{ color: "var(--muted)", fontSize: "13px" }}> - {chapterTitle(chapter.reason, chapter.kind, mmu)}</span>}
      </div>
      <p class="text">
        <PathText text={nar.text} mmu={mmu} />
      </p>
      {nar.mirrors && (
        <div>
          Kernel: <code>{nar.mirrors}</code>
        </div>
      )}
      {path && (
        <div style={{ fontSize: "13px", marginTop: "4px" }} data-testid="story-path">
          Where: <code>{path}</code>
        </div>
      )}
      {nar.correction && (
        <div class="correction" data-testid="story-correction">
          <strong>Correction to the usual telling:</strong> {nar.correction}
        </div>
      )}
    </div>
  );
}

function gapText(g: Extract<StoryItem, { t: "gap" }>): string {
  const top = Object.entries(g.byKind)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${k} x${int(v)}`)
    .join(", ");
  return `... ${int(g.skipped)} events not shown, the same steps repeated (${top}${Object.keys(g.byKind).length > 4 ? ", ..." : ""}).`;
}

function Log({ items, pos, mmu }: { items: StoryItem[]; pos: number; mmu: string }) {
  const list = useRef<HTMLOListElement>(null);
  const from = Math.max(0, pos - LOG_ITEMS + 1);
  const shown = pos >= 0 ? items.slice(from, pos + 1) : [];
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [pos]);
  return (
    <section aria-label="Narration so far">
      <h3>Narration</h3>
      <ol class="log" ref={list} data-testid="story-log">
        {shown.map((it, k) => {
          const i = from + k;
          if (it.t === "gap") {
            return (
              <li key={i} class="gap">
                {gapText(it)}
              </li>
            );
          }
          if (it.t === "chapter") {
            return (
              <li key={i} class="chapter" data-reason={it.reason}>
                {chapterTitle(it.reason, it.kind, mmu)}
              </li>
            );
          }
          const nar = narrate(it.e, { mmu });
          return (
            <li key={i} class={i === pos ? "current" : ""} data-kind={it.e.kind}>
              <span class="n">{int(it.n + 1)}</span>
              <span>
                {nar.text} <code>{nar.mirrors}</code>
                {nar.correction && i === pos ? null : nar.correction ? <em> (see the correction)</em> : null}
              </span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}

const STAGE_ORDER: Stage[] = ["setup", "fault-in", "guest", "shadow", "aging", "eviction", "swap-in", "migration"];

function Panels({
  counts,
  sums,
  chapter,
  free,
  swapFree,
  fixed,
  words,
  cursor,
}: {
  counts: Record<string, number>;
  sums: Record<string, number>;
  chapter: Chapter;
  free: number | null;
  swapFree: number | null;
  fixed: { hostPages: number; swapTotal: number };
  words: MmuWords;
  cursor: CursorObjects | null;
}) {
  const c = (k: string) => counts[k] ?? 0;
  const s = (k: string) => sums[k] ?? 0;
  const byStage: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts)) byStage[stageOf(k)] = (byStage[stageOf(k)] ?? 0) + v;
  const g = chapter.gauges;
  const hostPages = Math.max(1, fixed.hostPages);
  const swapTotal = fixed.swapTotal;
  const leaves =
    (g.ept_leaves_4k ?? 0) +
    c("kvm.spte_install") -
    (chapter.counts["kvm.spte_install"] ?? 0) -
    (s("kvm.notifier_zap.zapped") - (chapter.sums["kvm.notifier_zap.zapped"] ?? 0));
  return (
    <div data-testid="story-panels">
      <div class="panel">
        <h3>Counts per stage (events so far)</h3>
        <table class="data-table">
          <tbody>
            {STAGE_ORDER.filter((st) => (st !== "shadow" && st !== "migration") || (byStage[st] ?? 0) > 0).map((st) => (
              <tr key={st}>
                <th scope="row" style={{ fontWeight: "normal" }}>
                  <span class={`stage-badge stage-${st}`}>
                    <PathText text={STAGE_TITLES[st]} mmu={words.mmu} />
                  </span>
                </th>
                <td class="num">{int(byStage[st] ?? 0)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table class="data-table" style={{ marginTop: "6px" }}>
          <tbody>
            <Row label={withTerm("exit", "VM exits", "", " (all reasons)")} v={c("kvm.exit")} testid="story-exits" />
            <Row label={withTerm("page-fault", "page faults", "host ")} v={c("host.fault")} testid="story-host-faults" />
            <Row label={withTerm("spte", words.entries, "", " installed")} v={c("kvm.spte_install")} testid="story-installs" />
            <Row label="faults retried after a race" v={c("kvm.fault_retry")} />
          </tbody>
        </table>
      </div>
      <div class="panel">
        <h3>{withTerm("lru", "LRU", "Host memory and the ")}</h3>
        <Meter label="free" value={free} max={hostPages} cls="free" unit="pages" testid="story-free" />
        <Meter label="active anon" value={g.nr_active_anon ?? 0} max={hostPages} cls="active" unit="pages" />
        <Meter label="inactive anon" value={g.nr_inactive_anon ?? 0} max={hostPages} cls="inactive" unit="pages" />
        <p style={{ fontSize: "12px", color: "var(--muted)", margin: "2px 0 6px" }}>
          Free pages as of the latest allocation or free; list sizes as of this chapter's start.
        </p>
        <LruMove o={cursor} />
        <table class="data-table">
          <tbody>
            <Row label="pages added to the LRU" v={c("host.lru_add")} />
            <Row label={withTerm("kswapd", "kswapd", "", " wake-ups")} v={c("host.kswapd_wake")} />
            <Row label="pages scanned" v={s("host.lru_scan.scanned")} />
            <Row
              label={withTerm("ad-bits", "accessed bit", `aging questions to KVM (${words.tables} `, ")")}
              v={c("host.notifier.clear_flush_young")}
            />
            <Row label="activated (found young)" v={c("host.activate")} />
            <Row label="deactivated" v={s("host.lru_scan.deactivated")} />
            <Row label="reclaimed" v={s("host.lru_scan.reclaimed")} />
          </tbody>
        </table>
      </div>
      <div class="panel">
        <h3>{withTerm("swap", "Swap", "", " device")}</h3>
        <Meter
          label="slots used"
          value={swapFree === null ? null : swapTotal - swapFree}
          max={Math.max(1, swapTotal)}
          cls="swap"
          unit="slots"
          testid="story-swap-used"
        />
        <SwapMove o={cursor} />
        <table class="data-table">
          <tbody>
            <Row label="swap-outs (pswpout)" v={c("host.swap_out")} testid="story-pswpout" />
            <Row label="swap-ins (pswpin)" v={c("host.swap_in")} testid="story-pswpin" />
            <Row label="slots freed" v={c("host.swap_free")} />
          </tbody>
        </table>
      </div>
      <div class="panel">
        <h3>KVM</h3>
        <Meter label={`${words.tables} leaves`} value={Math.max(0, leaves)} max={hostPages} cls="ept" unit="4 KiB" />
        <table class="data-table">
          <tbody>
            <Row label={withTerm("mmu-notifier", "notifier", "", " invalidations")} v={c("host.notifier.start")} />
            <Row label={withTerm("zap", "zapped", `${words.entries} `)} v={s("kvm.notifier_zap.zapped")} />
            <Row label={withTerm("tlb", "TLB", "remote ", " flushes")} v={c("kvm.remote_tlb_flush")} />
          </tbody>
        </table>
      </div>
    </div>
  );
}

function Row({ label, v, testid }: { label: ComponentChildren; v: number; testid?: string }) {
  return (
    <tr data-testid={testid} data-value={v}>
      <th scope="row" style={{ fontWeight: "normal" }}>
        {label}
      </th>
      <td class="num">{int(v)}</td>
    </tr>
  );
}

function Meter(p: { label: string; value: number | null; max: number; cls: string; unit: string; testid?: string }) {
  const { label, value, max, cls, unit } = p;
  return (
    <div class="meter" data-testid={p.testid} data-value={value ?? ""}>
      <span>{label}</span>
      <div class="track" aria-hidden="true">
        <div class={`fill ${cls}`} style={{ width: `${Math.min(100, ((value ?? 0) / Math.max(1, max)) * 100)}%` }} />
      </div>
      <span class="val">
        {value === null ? "not yet known" : int(value)} <span style={{ color: "var(--muted)", fontSize: "11px" }}>{unit}</span>
      </span>
    </div>
  );
}

function FrameMapPanel({ cells, step, onPick }: { cells: Uint8Array; step: number; onPick?: (pfn: number) => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [hover, setHover] = useState("");
  const cols = 2 ** Math.ceil(Math.log2(Math.sqrt(cells.length)));
  const rows = Math.ceil(cells.length / cols);
  const counts = new Array<number>(FRAME_STATES.length).fill(0);
  for (const c of cells) counts[c] = (counts[c] ?? 0) + 1;
  useEffect(() => {
    const c = canvas.current;
    const g = c?.getContext("2d");
    if (!c || !g) return;
    const img = g.createImageData(cols, rows);
    const rgb = FRAME_STATES.map((s) => [1, 3, 5].map((i) => Number.parseInt(s.color.slice(i, i + 2), 16)));
    for (let i = 0; i < cells.length; i++) {
      const [r, gg, b] = rgb[cells[i]!] ?? [255, 255, 255];
      img.data[i * 4] = r!;
      img.data[i * 4 + 1] = gg!;
      img.data[i * 4 + 2] = b!;
      img.data[i * 4 + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }, [cells, cols, rows]);
  const onMove = (e: MouseEvent) => {
    const c = canvas.current!;
    const r = c.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * cols);
    const y = Math.floor(((e.clientY - r.top) / r.height) * rows);
    const i = y * cols + x;
    const st = FRAME_STATES[cells[i] ?? 0];
    if (i >= 0 && i < cells.length && st) setHover(`frame 0x${(i * step).toString(16)}: ${st.name} (${st.description})`);
  };
  return (
    <div class="panel" data-testid="frame-map">
      <h3>Host frames by owner and state</h3>
      <div class="frame-row">
        <canvas
          ref={canvas}
          width={cols}
          height={rows}
          class="frame-map"
          style={{ aspectRatio: `${cols} / ${rows}` }}
          role="img"
          aria-label={`Map of ${int(cells.length * step)} host frames by state: ${FRAME_STATES.map((s) => `${s.name} ${int(counts[s.id]! * step)}`).join(", ")}`}
          onMouseMove={onMove}
          onClick={(e) => {
            const r = canvas.current!.getBoundingClientRect();
            const i = Math.floor(((e.clientY - r.top) / r.height) * rows) * cols + Math.floor(((e.clientX - r.left) / r.width) * cols);
            if (onPick && i >= 0 && i < cells.length) onPick(i * step);
          }}
          onMouseLeave={() => setHover("")}
        />
        <div>
          <ul class="frame-legend">
            {FRAME_STATES.map((s) =>
              counts[s.id] ? (
                <li key={s.id} title={s.description}>
                  <span class="swatch-solid" style={{ background: s.color }} /> {s.name} <b>{int(counts[s.id]! * step)}</b>
                </li>
              ) : null,
            )}
          </ul>
          <p style={{ fontSize: "12px", minHeight: "32px", color: "var(--muted)", margin: "6px 0 0" }}>
            {hover ||
              `One cell per ${step === 1 ? "4 KiB frame" : `${step} frames`}, frame 0 at the top left, as of the current event; point at a cell, click it to follow its page.`}
          </p>
        </div>
      </div>
    </div>
  );
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The guest's and KVM's tables on the path of the address the story follows, as of the chapter's start. */
function TreesPanel({ chapter, prev }: { chapter: Chapter | null; prev: Chapter | null }) {
  const t = chapter?.trees;
  return (
    <div class="panel" data-testid="story-trees">
      <h3>Page tables on one address's path</h3>
      {t ? (
        <>
          <p class="tree-note">
            Following gva <code>{hex(t.guest.addr)}</code>, the first page the guest faulted in, as of this chapter's start: each table on
            the way with its present entries of 512. Marked <span class="tree-change new">new</span>,{" "}
            <span class="tree-change gone">gone</span> or <span class="tree-change changed">changed</span>: since the previous chapter.
          </p>
          <div class="trees">
            <TreeView tree={t.guest} prev={prev?.trees?.guest} testid="tree-guest" />
            <TreeView tree={t.second} prev={prev?.trees?.second} testid="tree-kvm" />
          </div>
        </>
      ) : (
        <p class="tree-note">The trees appear once the guest has faulted in its first page (the story follows that address).</p>
      )}
    </div>
  );
}
