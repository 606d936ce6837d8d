// SPDX-License-Identifier: MIT
// The translate view: one guest access on a scratch machine (the one `memvirt translate`
// uses), its walk laid out on the two-dimensional grid and revealed step by step, the
// totals, and what the TLB and paging-structure caches save on the next accesses.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { fromCanonical, hex, toCanonical } from "../../hw/addr.js";
import { coldWalkReads, DEFAULT_TRANSLATE, type PageSizeName, type TranslateOptions, type TranslateReport } from "../../sim/translate.js";
import type { ViewProps } from "../app.js";
import { useViewKeys } from "../keys.js";
import { twentyFive } from "../narration.js";
import type { TranslateResult } from "../protocol.js";
import { SimClient } from "../sim_client.js";
import { emptyReason, gridFor } from "../translate_grid.js";
import { entryHex } from "../format.js";
import { Term } from "../components/term.js";
import { hostPageLabel, translateIntro } from "../mmu_words.js";
// quiz: the mode switch (walk, quiz, side by side)
import { QuizPanel } from "../components/quiz.js";
import { SideBySideView } from "../components/side_by_side.js";
import { parseQuizState, type QuizState, quizParams, type TranslateTab } from "../url_state.js";

type Mode = "native" | "shadow" | "ept" | "npt";
const MODES: { value: Mode; label: string }[] = [
  { value: "ept", label: "EPT (Intel nested paging)" },
  { value: "npt", label: "NPT (AMD nested paging)" },
  { value: "shadow", label: "Shadow paging (one-dimensional)" },
  { value: "native", label: "Native (no virtualization)" },
];
const PAGES: PageSizeName[] = ["4k", "2m", "1g"];
const PAGE_LABEL: Record<PageSizeName, string> = { "4k": "4 KiB", "2m": "2 MiB", "1g": "1 GiB" };
const SPEEDS = [0.5, 1, 2, 4, 8, 16];

interface Settings {
  mode: Mode;
  levels: 4 | 5;
  guestPage: PageSizeName;
  hostPage: PageSizeName;
  gva: string;
  access: "read" | "write" | "fetch";
  caches: boolean;
}

function settingsFrom(p: Record<string, string>): Settings {
  const mode = (["native", "shadow", "ept", "npt"] as const).find((m) => m === p.mode) ?? "ept";
  const page = (v: string | undefined) => PAGES.find((x) => x === v) ?? "4k";
  return {
    mode,
    levels: p.levels === "5" ? 5 : 4,
    guestPage: page(p.gp),
    hostPage: page(p.hp),
    gva: p.gva ?? hex(toCanonical(DEFAULT_TRANSLATE.gva, 4), 16),
    access: p.access === "write" || p.access === "fetch" ? p.access : "read",
    caches: p.caches === "on",
  };
}

/** Parses the address field: hex or decimal, canonical for the levels, 8-byte aligned (as `memvirt translate --gva`). */
export function parseGva(text: string, levels: 4 | 5): { gva: number } | { error: string } {
  const t = text.trim().replaceAll("_", "");
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(t)) return { error: `"${text}" is not an address; give hex like 0x7f1234567000` };
  const v = BigInt(t);
  const a = fromCanonical(v, levels);
  if (a === null) {
    return {
      error: `${hex(v)} is not canonical for ${levels}-level paging (bits ${levels === 4 ? "63:47" : "63:56"} must all equal bit ${levels === 4 ? 47 : 56})`,
    };
  }
  if (v % 8n !== 0n) return { error: `${hex(v)} is not 8-byte aligned; use ${hex(v & ~7n)}` };
  return { gva: a };
}

function optionsOf(s: Settings, gva: number): TranslateOptions {
  const paging = s.mode === "shadow" ? "native" : s.mode;
  return {
    ...DEFAULT_TRANSLATE,
    paging,
    levels: s.levels,
    guestPage: s.guestPage,
    hostPage: paging === "native" ? "4k" : s.hostPage,
    gva,
    accesses: 1,
    access: s.access,
    caches: s.caches,
  };
}

const KIND_LABEL = { "guest-table": "guest table", "nested-table": "nested table", data: "data" } as const;

export function TranslateView({ initial, setParams, active }: ViewProps) {
  const [s, setS] = useState<Settings>(() => settingsFrom(initial));
  const [result, setResult] = useState<TranslateResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pos, setPos] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(2);
  const client = useRef<SimClient | null>(null);
  const parsed = parseGva(s.gva, s.levels);
  const initialStep = useRef(Math.max(0, Number.parseInt(initial.step ?? "0", 10) || 0));
  // quiz: the mode and the quiz's position, in the link too
  const [quiz, setQuiz] = useState<QuizState>(() => parseQuizState(initial));

  useEffect(() => {
    setParams({
      mode: s.mode,
      levels: String(s.levels),
      gp: s.guestPage,
      hp: s.hostPage,
      gva: s.gva,
      access: s.access,
      caches: s.caches ? "on" : "",
      ...quizParams(quiz),
    });
    if ("error" in parsed) {
      // The previous walk was for another address: do not leave it beside the error.
      setError(parsed.error);
      setResult(null);
      setPlaying(false);
      return;
    }
    setError(null);
    client.current ??= new SimClient();
    const c = client.current;
    const id = c.send({ type: "translate", opts: optionsOf(s, parsed.gva), shadow: s.mode === "shadow" }, (r) => {
      if (r.type === "translate") {
        setResult(r.result);
        // A link's walk step applies to the first walk shown; later walks start empty.
        setPos(Math.min(r.result.walk.steps.length, initialStep.current));
        initialStep.current = 0;
        setPlaying(false);
      } else if (r.type === "error") {
        setError(r.message);
        setResult(null);
      }
      c.done(id);
    });
  }, [s.mode, s.levels, s.guestPage, s.hostPage, s.gva, s.access, s.caches]);

  // The walk step in the link too (replacing the entry: stepping is not navigation).
  useEffect(() => {
    setParams({
      mode: s.mode,
      levels: String(s.levels),
      gp: s.guestPage,
      hp: s.hostPage,
      gva: s.gva,
      access: s.access,
      caches: s.caches ? "on" : "",
      step: pos > 0 ? String(pos) : "",
      ...quizParams(quiz),
    });
  }, [pos, s, quiz]);

  const walk = result?.walk ?? null;
  const total = walk?.steps.length ?? 0;

  useEffect(() => {
    if (!playing || !active) return;
    if (pos >= total) {
      setPlaying(false);
      return;
    }
    const t = setTimeout(() => setPos((p) => Math.min(total, p + 1)), 1000 / speed);
    return () => clearTimeout(t);
  }, [playing, pos, total, speed, active]);

  useViewKeys(active, (e: KeyboardEvent) => {
    if (quiz.tab !== "walk") return false; // quiz: the walk's keys step the walk tab only
    if (e.key === "ArrowRight" || e.key === ".") setPos((p) => Math.min(total, p + 1));
    else if (e.key === "ArrowLeft" || e.key === ",") setPos((p) => Math.max(0, p - 1));
    else if (e.key === "Home") setPos(0);
    else if (e.key === "End") setPos(total);
    else if (e.key === "p" || e.key === "P") setPlaying((x) => !x);
    else return false;
    return true;
  });

  const set = <K extends keyof Settings>(k: K, v: Settings[K]) => setS((old) => ({ ...old, [k]: v }));

  return (
    <div>
      <h2>Translate: one guest access, every memory reference</h2>
      <p class="lead">{translateIntro(s.mode)} Keys: arrows step, Home/End, P play/pause.</p>
      <div class="controls">
        <label>
          Paging mode
          <select value={s.mode} onChange={(e) => set("mode", (e.target as HTMLSelectElement).value as Mode)}>
            {MODES.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Levels
          <select value={String(s.levels)} onChange={(e) => set("levels", (e.target as HTMLSelectElement).value === "5" ? 5 : 4)}>
            <option value="4">4 (48-bit)</option>
            <option value="5">5 (57-bit)</option>
          </select>
        </label>
        <label>
          Guest page
          <select value={s.guestPage} onChange={(e) => set("guestPage", (e.target as HTMLSelectElement).value as PageSizeName)}>
            {PAGES.map((p) => (
              <option key={p} value={p}>
                {PAGE_LABEL[p]}
              </option>
            ))}
          </select>
        </label>
        <label>
          {hostPageLabel(s.mode)}
          <select
            value={s.hostPage}
            disabled={s.mode === "native" || s.mode === "shadow"}
            onChange={(e) => set("hostPage", (e.target as HTMLSelectElement).value as PageSizeName)}
          >
            {PAGES.map((p) => (
              <option key={p} value={p}>
                {PAGE_LABEL[p]}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>
            Guest-virtual address (<Term id="gva" />)
          </span>
          <input
            type="text"
            class="mono"
            size={20}
            value={s.gva}
            aria-invalid={error !== null}
            onChange={(e) => set("gva", (e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Access
          <select value={s.access} onChange={(e) => set("access", (e.target as HTMLSelectElement).value as Settings["access"])}>
            <option value="read">read</option>
            <option value="write">write</option>
            <option value="fetch">fetch</option>
          </select>
        </label>
        <label class="inline">
          <input type="checkbox" checked={s.caches} onChange={(e) => set("caches", (e.target as HTMLInputElement).checked)} />
          <Term id="psc">paging-structure caches</Term> on (off: the architectural worst case)
        </label>
      </div>
      {error && (
        <div class="error-box" role="alert">
          {error}
        </div>
      )}
      {s.mode === "shadow" && (
        <div class="note" data-testid="shadow-note">
          <strong>
            <Term id="shadow-paging">Shadow paging</Term>
          </strong>
          : the hardware walks KVM's shadow tables, which map gva straight to hpa in one dimension: as many references as native paging. KVM
          built them from the guest's own entries, shown here as the guest entries they are, at their gpa and at the real hpa of the host
          frame behind it (KVM reads them in software: <code>FNAME(walk_addr_generic)</code>). The cost moved elsewhere: guest page-table
          writes and <Term id="cr3">CR3</Term> loads exit to the host so KVM can keep the shadow tables in step.
          {result?.shadowLeaf && (
            <div data-testid="shadow-leaf">
              The shadow leaf KVM built (<code>FNAME(fetch) -&gt; mmu_set_spte()</code>): gva {s.gva} -&gt; hpa{" "}
              <code>{result.shadowLeaf.hpa}</code>, entry <code>{entryHex(result.shadowLeaf.lo, result.shadowLeaf.hi)}</code> (
              {result.shadowLeaf.entry}). Simplified: the guest leaf's permission bits on the host frame; KVM's own software bits not shown.
            </div>
          )}
        </div>
      )}
      <QuizTabs tab={quiz.tab} onTab={(tab) => setQuiz((q) => ({ ...q, tab }))} />
      {quiz.tab === "side" && "gva" in parsed && <SideBySideView opts={optionsOf(s, parsed.gva)} />}
      {quiz.tab === "quiz" && walk && <QuizPanel walk={walk} state={quiz} onState={setQuiz} mode={s.mode} />}
      {quiz.tab === "walk" && walk && (
        <>
          <fieldset class="player">
            <legend class="visually-hidden">Walk player</legend>
            <button type="button" onClick={() => setPos(0)} aria-label="Back to the start">
              |&lt; Start
            </button>
            <button type="button" onClick={() => setPos((p) => Math.max(0, p - 1))} aria-label="Step back">
              &lt; Back
            </button>
            <button type="button" class="primary" data-testid="walk-play" onClick={() => setPlaying((x) => !x && pos < total)}>
              {playing ? "Pause" : "Play"}
            </button>
            <button type="button" data-testid="walk-step" onClick={() => setPos((p) => Math.min(total, p + 1))} aria-label="Step">
              Step &gt;
            </button>
            <button type="button" onClick={() => setPos(total)} aria-label="Show the whole walk">
              End &gt;|
            </button>
            <label class="inline">
              Speed{" "}
              <select value={String(speed)} onChange={(e) => setSpeed(Number((e.target as HTMLSelectElement).value))}>
                {SPEEDS.map((v) => (
                  <option key={v} value={String(v)}>
                    {v} step{v === 1 ? "" : "s"}/s
                  </option>
                ))}
              </select>
            </label>
            <span data-testid="walk-pos">
              step {pos} of {total}
            </span>
            <RunningCount report={walk} pos={pos} />
          </fieldset>
          <WalkGrid report={walk} pos={pos} mode={s.mode} />
          <div class="cols">
            <div>
              <Totals report={walk} pos={pos} />
              <StepDetail report={walk} pos={pos} />
            </div>
            <Warm result={result!} />
          </div>
        </>
      )}
    </div>
  );
}

// quiz: the mode switch
const TABS: { tab: TranslateTab; label: string }[] = [
  { tab: "walk", label: "Walk" },
  { tab: "quiz", label: "Quiz" },
  { tab: "side", label: "EPT and shadow side by side" },
];

function QuizTabs({ tab, onTab }: { tab: TranslateTab; onTab: (t: TranslateTab) => void }) {
  return (
    <fieldset class="quiz-tabs">
      <legend class="visually-hidden">Mode</legend>
      {TABS.map((t) => (
        <button
          key={t.tab}
          type="button"
          class={t.tab === tab ? "primary" : ""}
          aria-pressed={t.tab === tab}
          data-tab={t.tab}
          onClick={() => onTab(t.tab)}
        >
          {t.label}
        </button>
      ))}
    </fieldset>
  );
}

function WalkGrid({ report, pos, mode }: { report: TranslateReport; pos: number; mode: Mode }) {
  const grid = useMemo(() => gridFor(report), [report]);
  const at = new Map<string, number>();
  for (const [i, c] of grid.cells.entries()) at.set(`${c.row},${c.col}`, i);
  const nested = report.options.paging !== "native";
  const colLabels = mode === "shadow" ? ["guest entry (read by KVM) / data"] : grid.colLabels;
  return (
    <div class="walk-wrap">
      <div class="legend" aria-hidden="true">
        <span>
          <span class="swatch guest-table" />
          {mode === "shadow" ? "guest table read by KVM's software walk" : "guest table read"}
        </span>
        {nested && (
          <span>
            <span class="swatch nested-table" />
            {report.options.paging.toUpperCase()} table read
          </span>
        )}
        <span>
          <span class="swatch data" />
          the data access
        </span>
      </div>
      <table class="walk" aria-label="The walk, one cell per memory reference">
        <thead>
          <tr>
            <th scope="col">{nested ? "guest-physical address being translated" : "table"}</th>
            {colLabels.map((l) => (
              <th key={l} scope="col">
                {l}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: grid.rows }, (_, r) => (
            <tr key={r}>
              <th scope="row" class="rowlabel">
                {grid.rowLabels[r]}
              </th>
              {Array.from({ length: grid.cols }, (_, c) => {
                const i = at.get(`${r},${c}`);
                if (i === undefined) {
                  const why = emptyReason(report, r, c);
                  return (
                    <td key={c}>
                      <span class="skip-why">{why}</span>
                    </td>
                  );
                }
                const cell = grid.cells[i]!;
                if (i >= pos) {
                  return (
                    <td key={c} data-step={i + 1}>
                      <span class="visually-hidden">step {i + 1}, not yet read</span>
                    </td>
                  );
                }
                const st = cell.step;
                const label = st.table;
                return (
                  <td key={c} class={`filled ${st.kind}${i === pos - 1 ? " current" : ""}`} data-step={i + 1} data-filled="1">
                    <div>
                      <span class="stepno">{i + 1}</span>
                      <span class="tname">{st.kind === "data" ? "data access" : label}</span>
                    </div>
                    {st.kind !== "data" && <div class="mono hex">{entryHex(st.lo, st.hi)}</div>}
                    <div class="bits">{st.kind === "data" ? `hpa ${st.hpa}` : st.entry}</div>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RunningCount({ report, pos }: { report: TranslateReport; pos: number }) {
  const shown = report.steps.slice(0, pos);
  const g = shown.filter((s) => s.kind === "guest-table").length;
  const nn = shown.filter((s) => s.kind === "nested-table").length;
  return (
    <strong aria-live="polite">
      references: <span data-testid="ref-count">{pos}</span> = {g} guest + {nn}{" "}
      {report.options.paging === "native" ? "nested" : report.options.paging.toUpperCase()} + {pos - g - nn} data
    </strong>
  );
}

function Totals({ report, pos }: { report: TranslateReport; pos: number }) {
  const shown = report.steps.slice(0, pos);
  const g = shown.filter((s) => s.kind === "guest-table").length;
  const nn = shown.filter((s) => s.kind === "nested-table").length;
  const d = shown.filter((s) => s.kind === "data").length;
  const o = report.options;
  const done = pos === report.steps.length;
  const nested = o.paging !== "native";
  return (
    <div class="totals">
      <span class="big" data-testid="ref-total">
        {pos}
      </span>{" "}
      {done ? "memory references for one guest access" : `of ${report.steps.length} references so far`}: {g} guest-table + {nn} nested-table
      + {d} data
      {done && report.outcome !== "ok" && <div class="error-box">The walk ended with {report.outcome}.</div>}
      {done && nested && o.guestPage === "4k" && o.hostPage === "4k" && !o.caches && report.outcome === "ok" && (
        <p class="note" style={{ fontSize: "14px" }}>
          n*m + n + m = {coldWalkReads(o.levels, o.levels)} table reads for n = m = {o.levels}, plus the data: "the guest touches memory
          once, the host may touch it {report.steps.length} times". {twentyFive(o.paging)}
        </p>
      )}
    </div>
  );
}

function StepDetail({ report, pos }: { report: TranslateReport; pos: number }) {
  if (pos === 0) return <p class="note">Press Play or Step to read the first entry.</p>;
  const s = report.steps[pos - 1]!;
  return (
    <div class="panel" aria-live="polite">
      <h3>
        Step {s.step}: {s.kind === "data" ? "the data access" : s.table} ({KIND_LABEL[s.kind]})
      </h3>
      <div class="table-wrap">
        <table class="data-table">
          <tbody>
            {s.translating && (
              <tr>
                <th scope="row">translating</th>
                <td>
                  {s.translating === "data gpa" ? "the data's guest-physical address" : `the address of guest table ${s.translating}`}
                </td>
              </tr>
            )}
            {s.gpa && (
              <tr>
                <th scope="row">
                  <Term id="gpa" />
                </th>
                <td class="mono">{s.gpa}</td>
              </tr>
            )}
            <tr>
              <th scope="row">
                {s.kind === "data" ? "accessed at " : "entry at "}
                <Term id="hpa" />
              </th>
              <td class="mono">{s.hpa}</td>
            </tr>
            {s.kind !== "data" && (
              <>
                <tr>
                  <th scope="row">entry</th>
                  <td class="mono">{entryHex(s.lo, s.hi)}</td>
                </tr>
                <tr>
                  <th scope="row">decoded</th>
                  <td class="mono">{s.entry}</td>
                </tr>
              </>
            )}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function Warm({ result }: { result: TranslateResult }) {
  const w = result.warm;
  const cold = result.walk.perAccess[0]!;
  return (
    <div class="panel">
      <h3>
        The same address again, <Term id="tlb" /> and caches on
      </h3>
      <p style={{ margin: "0 0 6px", fontSize: "13px" }}>
        Three accesses in a row with the TLB, paging-structure caches{result.walk.options.paging === "native" ? "" : " and nested TLB"} on.
        The first fills the caches (they already help within its own walk); the next ones hit the TLB.
      </p>
      <div class="table-wrap">
        <table class="data-table" data-testid="warm-table">
          <thead>
            <tr>
              <th scope="col">access</th>
              <th scope="col" class="num">
                references
              </th>
              <th scope="col" class="num">
                guest
              </th>
              <th scope="col" class="num">
                nested
              </th>
              <th scope="col" class="num">
                data
              </th>
              <th scope="col" class="num">
                saved
              </th>
            </tr>
          </thead>
          <tbody>
            {w.perAccess.map((a, i) => (
              <tr key={i}>
                <td>{["first", "second", "third"][i] ?? i + 1}</td>
                <td class="num">{a.total}</td>
                <td class="num">{a.guestTable}</td>
                <td class="num">{a.nestedTable}</td>
                <td class="num">{a.data}</td>
                <td class="num">{cold.total - a.total}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p style={{ fontSize: "13px" }}>
        Outcome: {w.outcome}
        {w.gpa ? `, gpa ${w.gpa}` : ""}
        {w.hpa ? `, hpa ${w.hpa}` : ""} ({w.pageSize >= 2 ** 30 ? "1 GiB" : w.pageSize >= 2 ** 21 ? "2 MiB" : "4 KiB"} TLB entry).
      </p>
    </div>
  );
}
