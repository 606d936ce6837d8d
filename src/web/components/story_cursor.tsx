// SPDX-License-Identifier: MIT
// The story's cursor panels: the chain strip (the reclaim path or the exit being handled,
// the current link lit), what the current event touches, the page's three trees with the
// entry the event changed lit up before and after, the LRU and swap moves, and a magnified
// strip of the host frames around the current one.

import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { FRAME_STATES } from "../frame_map.js";
import type { MmuWords } from "../mmu_words.js";
import type { TreeSummary } from "../protocol.js";
import type { ChainPosition, CursorObjects, Pin, StoryCursor } from "../story_cursor.js";
import type { Follow, FollowTrees } from "../story_follow.js";
import { type LevelChange, lostLevels, treeChanges } from "../story_trees.js";

const hex = (n: number) => `0x${n.toString(16)}`;
const CHAIN_TITLE = { reclaim: "Reclaim of one page", refault: "Re-fault: the page comes back from swap", faultin: "Fault-in" } as const;

/** The chain the current event belongs to, one box per link, the current one lit. */
export function ChainStrip({ chain }: { chain: ChainPosition | null }) {
  if (!chain) return null;
  return (
    <div class="chain-strip" data-testid="chain-strip" data-chain={chain.chain} data-link={chain.link}>
      <div class="chain-title">{CHAIN_TITLE[chain.chain]}</div>
      <ol>
        {chain.links.map((l, k) => (
          <li
            key={l.label}
            class={k === chain.link ? "current" : !chain.hit[k] ? "skipped" : k < chain.link ? "done" : ""}
            data-kinds={l.kinds.join(" ")}
            aria-current={k === chain.link ? "step" : undefined}
            title={chain.hit[k] ? undefined : "not in this chain: no event took this step here"}
          >
            {l.label}
            {chain.hit[k] ? null : <span class="visually-hidden"> (not taken here)</span>}
          </li>
        ))}
      </ol>
    </div>
  );
}

const LRU_NAME: Record<string, string> = { active_anon: "active anon", inactive_anon: "inactive anon", "": "off the LRU" };
const SWAP_OP = {
  alloc: "takes swap slot",
  unmap: "its PTE now points at swap slot",
  out: "written to swap slot",
  in: "read back from swap slot",
  free: "frees swap slot",
  map: "mapped again from swap slot",
} as const;

/** The current event's objects, one line each. */
export function CursorObjectsView({ o, words }: { o: CursorObjects; words: MmuWords }) {
  const rows: [string, ComponentChildren, string][] = [];
  if (o.gva !== undefined) rows.push(["gva", <code>{hex(o.gva)}</code>, "gva"]);
  if (o.gpa !== undefined) rows.push(["gpa", <code>{hex(o.gpa)}</code>, "gpa"]);
  if (o.hva !== undefined) rows.push(["hva (QEMU)", <code>{hex(o.hva)}</code>, "hva"]);
  if (o.pfn !== undefined) rows.push(["host frame", <code>{hex(o.pfn)}</code>, "pfn"]);
  if (o.range) rows.push(["hva range", <code>{`${hex(o.range.start)}-${hex(o.range.end)}`}</code>, "range"]);
  if (o.entry) {
    const t = o.entry.tables === "guest" ? "guest page table" : o.entry.tables === "host" ? "QEMU's page table" : `${words.tables} table`;
    rows.push([
      "entry",
      <>
        {t}, level {o.entry.level}
        {o.entry.index >= 0 ? `, index ${o.entry.index}` : ""}: {o.entry.before ? `${o.entry.before} -> ` : ""}
        {o.entry.after}
      </>,
      "entry",
    ]);
  }
  if (o.rmap) rows.push(["rmap", `${o.rmap.op} (mm ${o.rmap.mm}, hva ${hex(o.rmap.hva)})`, "rmap"]);
  if (o.lru) rows.push(["LRU", `${LRU_NAME[o.lru.from] ?? o.lru.from} -> ${LRU_NAME[o.lru.to] ?? o.lru.to} (${o.lru.why})`, "lru"]);
  if (o.swap) rows.push([o.swap.device === "guest" ? "guest swap" : "swap", `${SWAP_OP[o.swap.op]} ${o.swap.slot}`, "swap"]);
  if (o.tlbFlush) rows.push(["TLB", "every vCPU flushes", "tlb"]);
  if (rows.length === 0) return null;
  return (
    <table class="data-table cursor-objects" data-testid="cursor-objects">
      <tbody>
        {rows.map(([k, v, id]) => (
          <tr key={id} data-obj={id}>
            <th scope="row">{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The LRU lists and the page's move between them at this event. */
export function LruMove({ o }: { o: CursorObjects | null }) {
  const lru = o?.lru;
  if (!lru) return null;
  const box = (name: string) => (
    <span class={`move-box${name === lru.from ? " from" : ""}${name === lru.to ? " to" : ""}`} data-list={name || "none"}>
      {LRU_NAME[name]}
    </span>
  );
  return (
    <p class="page-move" data-testid="lru-move" data-from={lru.from || "none"} data-to={lru.to || "none"}>
      Frame {o?.pfn !== undefined ? hex(o.pfn) : ""}: {box("inactive_anon")} {box("active_anon")} {box("")}{" "}
      <span class="move-why">{lru.why}</span>
    </p>
  );
}

/** The swap slot the page takes, leaves or is read from at this event. */
export function SwapMove({ o }: { o: CursorObjects | null }) {
  const s = o?.swap;
  if (!s) return null;
  return (
    <p class="page-move" data-testid="swap-move" data-slot={s.slot} data-op={s.op}>
      {s.device === "guest" ? "The guest's own swap: " : ""}
      {o?.pfn !== undefined ? `frame ${hex(o.pfn)} ` : ""}
      <span class="move-box to">
        {SWAP_OP[s.op]} {s.slot}
      </span>
    </p>
  );
}

/** What the cursor shows beside the narration: the chain and the objects. */
export function CursorPanel({ cursor, words }: { cursor: StoryCursor | null; words: MmuWords }) {
  return (
    <div class="panel cursor-panel" data-testid="cursor-panel">
      <h3>This step</h3>
      {cursor ? (
        <>
          <ChainStrip chain={cursor.chain} />
          <CursorObjectsView o={cursor.objects} words={words} />
        </>
      ) : (
        <p class="tree-note">No event here: step to one to see what it touches.</p>
      )}
    </div>
  );
}

const CHANGE_TEXT = { new: "new", gone: "gone", changed: "changed", "": "" } as const;

/** One tree on one address's path; `changes` marks levels, `before` gives a changed level's old bits, `lit` the level the event writes. */
export function TreeView(p: { tree: TreeSummary; prev: TreeSummary | null | undefined; testid: string; lit?: number; before?: boolean }) {
  const { tree, prev, testid } = p;
  const changes = treeChanges(prev, tree);
  const lost = lostLevels(prev, tree);
  let inner = (
    <>
      {lost.map((l) => (
        <ul key={`lost${l.level}`}>
          <li class="tree-level lost" data-level={l.level}>
            <span class="tree-name">{l.name}</span>[{l.index}] <span class="tree-change gone">gone</span>{" "}
            <span class="tree-meta">no longer reached</span> <code class="tree-bits">{l.bits}</code>
          </li>
        </ul>
      ))}
      <ul>
        <li class="tree-end" data-testid={`${testid}-end`}>
          &rarr; {tree.end}
        </li>
      </ul>
    </>
  );
  for (let i = tree.levels.length - 1; i >= 0; i--) {
    const l = tree.levels[i]!;
    const ch: LevelChange = changes[i] ?? "";
    const old = p.before && ch && prev ? prev.levels[i] : undefined;
    const lit = p.lit === l.level;
    inner = (
      <ul>
        <li
          class={`tree-level${l.mapped ? "" : " absent"}${ch ? ` changed-${ch}` : ""}${lit || (p.before && ch) ? " cursor-lit" : ""}`}
          data-level={l.level}
          data-change={ch}
          data-lit={lit ? "1" : undefined}
        >
          <span class="tree-name">{l.name}</span>[{l.index}] {ch && <span class={`tree-change ${ch}`}>{CHANGE_TEXT[ch]}</span>}{" "}
          <span class="tree-meta">
            in table {tree.frameKind} {hex(l.table)}, {l.present}/512 present
            {l.where ? ` (${l.where})` : ""}
          </span>
          <br />
          {old && (
            <>
              <span class="tree-meta">before: </span>
              <code class="tree-bits before" data-testid={`${testid}-before`}>
                {old.bits}
              </code>
              <br />
              <span class="tree-meta">after: </span>
            </>
          )}
          <code class="tree-bits">{l.bits}</code>
          {inner}
        </li>
      </ul>
    );
  }
  return (
    <details open class="tree" data-testid={testid} data-levels={tree.levels.length} data-addr={tree.addr} data-addr-kind={tree.addrKind}>
      <summary>
        <strong>{tree.title}</strong> <span class="tree-meta">{tree.addr >= 0 ? `for ${tree.addrKind} ${hex(tree.addr)}` : ""}</span>
      </summary>
      {tree.levels.length === 0 ? <p class="tree-end">&rarr; {tree.end}</p> : inner}
    </details>
  );
}

/**
 * The trees of the cursor's page (or of the page the user pinned): guest, KVM's and QEMU's,
 * the written entry lit, its old value beside the new.
 */
export function CursorTrees(props: {
  cursor: StoryCursor;
  words: MmuWords;
  pin: Pin | null;
  pinned: { follow: Follow; at: number } | null;
  onPin: (pin: Pin | null) => void;
}) {
  const { cursor, words, pin, pinned, onPin } = props;
  const f = pinned ? pinned.follow : cursor.follow!;
  const followAt = pinned ? pinned.at : cursor.followAt;
  const here = cursor.at;
  const b: FollowTrees | undefined = pinned ? undefined : cursor.before?.trees;
  const e = !pinned && cursor.followAt === here ? cursor.objects.entry : undefined;
  const lit = (t: "guest" | "kvm" | "host") => (e?.tables === t ? e.level : undefined);
  const p = f.page;
  const at = followAt === here ? "right after this event" : `as of the latest event that read them (story item ${followAt})`;
  return (
    <div
      class="panel"
      data-testid="story-trees"
      data-follow={pinned ? "pinned" : "cursor"}
      data-gpa={p.gpa}
      data-hva={p.hva}
      data-gva={p.gva}
    >
      <h3>
        Page tables on the path of {pinned ? "the page you follow" : "this step's page"}{" "}
        {pinned ? (
          <button type="button" data-testid="follow-unpin" onClick={() => onPin(null)}>
            Follow the story again
          </button>
        ) : (
          <button type="button" data-testid="follow-pin" onClick={() => onPin({ gpa: p.gpa, hva: p.hva })}>
            Follow this page
          </button>
        )}
      </h3>
      <p class="tree-note">
        Following{" "}
        {p.gva >= 0 ? (
          <>
            gva <code>{hex(p.gva)}</code> (pid {p.pid}),{" "}
          </>
        ) : null}
        {p.gpa >= 0 ? (
          <>
            gpa <code data-testid="follow-gpa">{hex(p.gpa)}</code>
          </>
        ) : null}
        {p.hva >= 0 ? (
          <>
            , QEMU's hva <code data-testid="follow-hva">{hex(p.hva)}</code>
          </>
        ) : null}
        , {at}.{p.role ? ` The guest keeps ${p.role} in this page: no gva maps it as data.` : ""}{" "}
        {f.trees.late
          ? "These events came before the window opened: the trees were read when it did, so they may already show later changes."
          : "The entry this step writes is lit; a changed entry shows its value before and after."}
      </p>
      {pin && !pinned && (
        <p class="tree-note" data-testid="follow-missing">
          {"pfn" in pin
            ? `No event kept so far has read the page in host frame ${hex(pin.pfn)}`
            : "No event kept so far has read that page"}
          : the trees follow this step's page.{" "}
          <button type="button" onClick={() => onPin(null)}>
            Clear
          </button>
        </p>
      )}
      <div class="trees trees-3">
        {f.trees.guest && <TreeView tree={f.trees.guest} prev={b?.guest} testid="tree-guest" lit={lit("guest")} before />}
        {f.trees.second && <TreeView tree={f.trees.second} prev={b?.second} testid="tree-kvm" lit={lit("kvm")} before />}
        {f.trees.host && <TreeView tree={f.trees.host} prev={b?.host} testid="tree-host" lit={lit("host")} before />}
      </div>
      {!f.trees.guest && p.gva < 0 && <p class="tree-note">No guest process maps this gpa as data, so there is no guest path to show.</p>}
      <p class="tree-note" style={{ marginTop: "4px" }}>
        {words.tables === "shadow" ? "Shadow tables are walked by the gva, so they follow the guest path's address." : ""}
      </p>
    </div>
  );
}

const ZOOM_COLS = 32;
const ZOOM_ROWS = 4;
const ZOOM_PX = 14;

/** A magnified strip of the host frames around `pfn`, the current frame outlined. */
export function FrameZoom({ cells, step, pfn, onPick }: { cells: Uint8Array; step: number; pfn: number; onPick?: (pfn: number) => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const per = ZOOM_COLS * ZOOM_ROWS;
  const cell = Math.floor(pfn / step);
  const first = Math.max(0, Math.min(cells.length - per, cell - (cell % per)));
  useEffect(() => {
    const c = canvas.current;
    const g = c?.getContext("2d");
    if (!c || !g) return;
    const css = getComputedStyle(c);
    g.clearRect(0, 0, c.width, c.height);
    for (let k = 0; k < per && first + k < cells.length; k++) {
      const x = (k % ZOOM_COLS) * ZOOM_PX;
      const y = Math.floor(k / ZOOM_COLS) * ZOOM_PX;
      g.fillStyle = FRAME_STATES[cells[first + k]!]?.color ?? "#ffffff";
      g.fillRect(x + 1, y + 1, ZOOM_PX - 2, ZOOM_PX - 2);
    }
    const k = cell - first;
    g.strokeStyle = css.getPropertyValue("--ink").trim() || "#000";
    g.lineWidth = 3;
    g.strokeRect((k % ZOOM_COLS) * ZOOM_PX + 1.5, Math.floor(k / ZOOM_COLS) * ZOOM_PX + 1.5, ZOOM_PX - 3, ZOOM_PX - 3);
  }, [cells, step, pfn, first]);
  const st = FRAME_STATES[cells[cell] ?? 0];
  return (
    <div class="panel" data-testid="frame-zoom" data-pfn={pfn} data-first={first * step}>
      <h3>
        Host frame {hex(pfn)}, magnified: frames {hex(first * step)}-{hex((first + per) * step - 1)}
      </h3>
      <canvas
        ref={canvas}
        class="frame-zoom"
        width={ZOOM_COLS * ZOOM_PX}
        height={ZOOM_ROWS * ZOOM_PX}
        role="img"
        aria-label={`Frames around ${hex(pfn)}; frame ${hex(pfn)} outlined: ${st?.name ?? "unknown"}`}
        onClick={(ev) => {
          const r = (ev.currentTarget as HTMLCanvasElement).getBoundingClientRect();
          const x = Math.floor(((ev.clientX - r.left) / r.width) * ZOOM_COLS);
          const y = Math.floor(((ev.clientY - r.top) / r.height) * ZOOM_ROWS);
          if (onPick && x >= 0 && y >= 0) onPick((first + y * ZOOM_COLS + x) * step);
        }}
      />
      <p class="tree-note">
        Outlined: frame {hex(pfn)}, now <strong data-testid="frame-zoom-state">{st?.name ?? "unknown"}</strong>
        {step > 1 ? ` (one cell per ${step} frames)` : ""}. Colours as in the map above; click a frame to follow its page in the trees.
      </p>
    </div>
  );
}
