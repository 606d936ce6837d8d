// SPDX-License-Identifier: MIT
// docs/paths.md (the seed paths the story tells), bundled into the page with Vite's `?raw`:
// its numbered sections by number, each with its title, a one-line summary and its text, so a
// "path N" in the story can say what it is and open the page's own copy of the document.

import PATHS_MD from "../../docs/paths.md?raw";
import { mmuWords } from "./mmu_words.js";

export interface PathSection {
  n: number;
  title: string;
  /** One line: what the path is. */
  summary: string;
  /** The section's markdown, below its heading. */
  body: string;
}

/** One line per section of docs/paths.md (the test checks every section has one). */
const SUMMARIES: Record<number, string> = {
  1: "QEMU reserves guest RAM as address space; the host backs each page only when it is first touched.",
  2: "KVM keeps its own tables from guest-virtual to host-physical, kept in step with the guest's write-protected tables.",
  3: "The hardware walks the guest's tables and, for every guest-physical address on the way, the second-level tables.",
  4: "The first touch of a guest page: an exit, KVM's look-up of QEMU's page, a host fault, KVM's new entry, and back.",
  5: "Under memory pressure the host ages and evicts guest pages; the mmu_notifier makes KVM drop its entries first.",
  6: "Fault-in, reclaim, eviction and swap-in, over and over: the whole cycle the built-in story goes round.",
};

/** The numbered sections ("## N. Title") of a paths document, in order. */
export function parsePaths(md: string): PathSection[] {
  const out: PathSection[] = [];
  const heads = [...md.matchAll(/^## (\d+)\. (.+)$/gm)];
  heads.forEach((m, i) => {
    const start = (m.index ?? 0) + m[0].length;
    const end = heads[i + 1]?.index ?? md.search(/^## (?!\d)/m) ?? md.length;
    const n = Number(m[1]);
    out.push({
      n,
      title: m[2]!.replace(/`/g, ""),
      summary: SUMMARIES[n] ?? "",
      body: md.slice(start, end > start ? end : md.length).trim(),
    });
  });
  return out;
}

export const PATHS: PathSection[] = parsePaths(PATHS_MD);

/** The document's text before its first section and its closing sections (the corrections). */
export const PATHS_INTRO = PATHS_MD.slice(PATHS_MD.indexOf("\n") + 1, PATHS_MD.search(/^## /m)).trim();

/** A path's title in the words of the MMU in use (path 4's "under EPT" reads "under NPT" under NPT). */
export function pathTitle(p: PathSection, mmu: string): string {
  return mmu === "ept" ? p.title : p.title.replace(/\bEPT\b/g, mmu === "shadow" ? "shadow paging" : mmuWords(mmu).tables);
}

/** "path 4", "path 2.3", "path 5, steps 1-3", "path 5 step 7": the references a narration makes. */
export const PATH_REF = /\bpath (\d+)((?:\.\d+)|(?:,? steps? \d+(?:-\d+)?))?/g;
