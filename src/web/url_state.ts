// SPDX-License-Identifier: MIT
// The page's state in the URL hash, so a link reproduces a run: the view, the scenario
// (deflated with fflate, base64url), the seed, the compare variant and the translate
// options. `#run&seed=7&s=...` - plain `key=value` pairs after the view name.

import { deflateSync, inflateSync, strFromU8, strToU8 } from "fflate";

export type View = "translate" | "run" | "story";
export const VIEWS: readonly View[] = ["translate", "run", "story"];

/* explain: the landing page ("home", shown when the hash names no view) and the glossary
   (`#glossary/spte`: the entry's id after a slash) are pages beside the three views. */
export type Page = View | "home" | "glossary";
export const PAGES: readonly Page[] = ["home", ...VIEWS, "glossary"];

export interface HashState {
  view: Page;
  params: Record<string, string>;
}

function toBase64Url(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Scenario text -> a short URL-safe string (raw deflate at level 9, base64url). */
export function packText(text: string): string {
  return toBase64Url(deflateSync(strToU8(text), { level: 9 }));
}

/** The inverse of packText; null if the string is not one. */
export function unpackText(packed: string): string | null {
  try {
    return strFromU8(inflateSync(fromBase64Url(packed)));
  } catch {
    return null;
  }
}

export function parseHash(hash: string): HashState {
  const body = hash.replace(/^#/, "");
  const parts = body.split("&").filter((p) => p !== "");
  let view: Page = "home";
  const params: Record<string, string> = {};
  for (const p of parts) {
    const eq = p.indexOf("=");
    if (eq < 0) {
      if ((PAGES as readonly string[]).includes(p)) view = p as Page;
      else if (p.startsWith("glossary/")) {
        view = "glossary";
        params.term = decodeURIComponent(p.slice("glossary/".length));
      }
      continue;
    }
    const k = decodeURIComponent(p.slice(0, eq));
    params[k] = decodeURIComponent(p.slice(eq + 1));
  }
  return { view, params };
}

export function formatHash(s: HashState): string {
  const term = s.view === "glossary" ? (s.params.term ?? "") : "";
  const parts: string[] = [term ? `glossary/${encodeURIComponent(term)}` : s.view];
  for (const [k, v] of Object.entries(s.params))
    if (v !== "" && !(term && k === "term")) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return `#${parts.join("&")}`;
}

// ---- quiz: the translate view's mode and quiz position (issue 16 item 6) ----

export type TranslateTab = "walk" | "quiz" | "side";
export type QuizKind = "walk" | "fault" | "counters";

export interface QuizState {
  tab: TranslateTab;
  quiz: QuizKind;
  /** Questions answered (the next one's index) and answered right. */
  q: number;
  ok: number;
}

const count = (v: string | undefined) => Math.max(0, Number.parseInt(v ?? "0", 10) || 0);

/** The translate view's `tab`, `quiz`, `q` and `qok` parameters. */
export function parseQuizState(p: Record<string, string>): QuizState {
  const tab: TranslateTab = p.tab === "quiz" || p.tab === "side" ? p.tab : "walk";
  const quiz: QuizKind = p.quiz === "fault" || p.quiz === "counters" ? p.quiz : "walk";
  const q = count(p.q);
  return { tab, quiz, q, ok: Math.min(q, count(p.qok)) };
}

/** The parameters for `s` (defaults left out, so a plain walk's link does not change). */
export function quizParams(s: QuizState): Record<string, string> {
  const quiz = s.tab === "quiz";
  return {
    tab: s.tab === "walk" ? "" : s.tab,
    quiz: quiz && s.quiz !== "walk" ? s.quiz : "",
    q: quiz && s.q > 0 ? String(s.q) : "",
    qok: quiz && s.ok > 0 ? String(s.ok) : "",
  };
}
