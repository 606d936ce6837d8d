// SPDX-License-Identifier: MIT
// The messages between the page and the simulation worker. The worker runs the library
// (the same code the CLI runs); the page only renders what comes back. Cancelling a run
// terminates the worker (the engine's run() is synchronous), and a fresh one takes over.

import type { SimEvent } from "../hw/events.js";
import type { ScenarioIssue } from "../sim/scenario_load.js";
import type { Report } from "../sim/report.js";
import type { TranslateOptions, TranslateReport } from "../sim/translate.js";
import type { ShadowLeaf } from "./shadow_walk.js";
import type { Follow } from "./story_follow.js";
import type { QuizMmu, QuizRun } from "./quiz_run.js";

export interface RunRequest {
  type: "run";
  id: number;
  /** Scenario text, YAML or JSON. */
  text: string;
  /** Name used in messages and in the report's `scenario` field. */
  fileName: string;
  /** Overrides the scenario's seed (as `memvirt run --seed`). */
  seed?: number;
  /** Values set before validation, by path (`vms[0].mmu`), as `--compare` variants do. */
  overrides?: Record<string, unknown>;
  /** Trace files a `trace` step may name, by file name. */
  files?: Record<string, Uint8Array>;
}

export interface StoryRequest {
  type: "story";
  id: number;
  text: string;
  fileName: string;
  seed?: number;
  overrides?: Record<string, unknown>;
  /** Most events kept for narration; the rest are counted in gaps. */
  maxEvents?: number;
  /** Trace files a `trace` step may name, by file name. */
  files?: Record<string, Uint8Array>;
}

export interface TranslateRequest {
  type: "translate";
  id: number;
  opts: TranslateOptions;
  /** Shadow paging: the guest's walk with real hpas and the leaf spte (shadow_walk.ts). */
  shadow?: boolean;
}

// quiz: the tiny run the fault-in and counter questions are generated from (quiz_run.ts)
export interface QuizRequest {
  type: "quiz";
  id: number;
  mmu: QuizMmu;
}

export type WorkerRequest = RunRequest | StoryRequest | TranslateRequest | QuizRequest;

/** One item of a story: an event kept for narration, a gap of events only counted, or a chapter start. */
export type StoryItem =
  | {
      t: "ev" /** Index in the whole event stream. */;
      n: number;
      e: SimEvent /** The page it is about and its trees (story_follow.ts). */;
      f?: Follow;
    }
  | { t: "gap"; n: number; skipped: number; byKind: Record<string, number> }
  | {
      t: "chapter";
      n: number;
      /** Why a window of events was kept here (e.g. "first host.swap_out"). */
      reason: string;
      /** Kind that opened the window, if an event did. */
      kind: string;
      /** Events per kind before this point, and sums of some fields (scanned, zapped...). */
      counts: Record<string, number>;
      sums: Record<string, number>;
      /** Host gauges and KVM/QEMU state at this point. */
      gauges: Record<string, number>;
      accesses: number;
      /** Host frames by state (frame_map.ts), one cell per `frameStep` frames. */
      frames?: Uint8Array;
      frameStep?: number;
      /** The guest's and KVM's tables on the path of the address the story follows (story_trees.ts). */
      trees?: StoryTrees;
    };

/** One table on a tree's path: the entry for the address, decoded, and how full the table is. */
export interface TreeLevel {
  level: number;
  /** PML4E, PDE, EPT PTE, NPT PDE, shadow PTE... */
  name: string;
  /** The table's frame (a gfn in the guest's tree, a host pfn in KVM's). */
  table: number;
  /** Index of the address's entry in the table. */
  index: number;
  /** Present entries in the table, of 512. */
  present: number;
  lo: number;
  hi: number;
  /** The entry's bits, decoded (formatX86Pte / formatEptPte). */
  bits: string;
  /** The entry is present (KVM's MMU-present bit for EPT/NPT and shadow entries). */
  mapped: boolean;
  /** Where the host keeps a guest table's page now (its frame, the swap cache, a swap slot). */
  where?: string;
}

/** A page-table tree reduced to one address's path. */
export interface TreeSummary {
  title: string;
  /** The address walked (-1: none). */
  addr: number;
  addrKind: "gva" | "gpa" | "hva";
  /** What the tables' frame numbers are. */
  frameKind: "gfn" | "pfn";
  levels: TreeLevel[];
  /** How the walk ended, in words. */
  end: string;
  /** The frame the path maps (gfn for the guest tree, host pfn for KVM's), or -1. */
  leaf: number;
}

export interface StoryTrees {
  mode: string;
  guest: TreeSummary;
  /** EPT/NPT for the guest leaf's gpa, or the shadow tables for the gva. */
  second: TreeSummary;
}

export interface TranslateResult {
  /** The walk asked for (cold unless the options say otherwise). */
  walk: TranslateReport;
  /** Three accesses to the same address with caches on: what the TLB and paging-structure caches save. */
  warm: TranslateReport;
  /** Shadow paging: the leaf spte KVM built from the guest's entries (shadow_walk.ts). */
  shadowLeaf?: ShadowLeaf | null;
}

export type WorkerReply =
  | { type: "progress"; id: number; done: number; total: number }
  | { type: "report"; id: number; report: Report }
  | { type: "scenario-error"; id: number; issues: ScenarioIssue[]; message: string }
  | { type: "error"; id: number; message: string }
  | { type: "story-items"; id: number; items: StoryItem[] }
  | { type: "story-done"; id: number; events: number; kept: number; report: Report }
  | { type: "translate"; id: number; result: TranslateResult }
  | { type: "quiz"; id: number; run: QuizRun };
