// SPDX-License-Identifier: MIT
// The story in plain chapters: about six over the built-in story (lazy allocation, first
// touch, the fault-in path, pressure and aging, eviction with the notifier, the re-fault and
// swap-in, then the steady state), plus shadow paging's own (CR3 exits, write-protected
// guest tables, emulation, unsync) and migration when they happen. The story's fine-grained
// windows (each opened by something new in the event stream) become steps inside them: a
// window opens the chapter its trigger belongs to, the first time that chapter is met, and
// otherwise stays in the chapter in force, so chapters follow the run's own order.

import { mmuWords } from "./mmu_words.js";
import { stageOf } from "./narration.js";

export type ChapterId =
  | "lazy"
  | "first-touch"
  | "fault-in"
  | "shadow-cr3"
  | "shadow-wp"
  | "shadow-emulation"
  | "shadow-unsync"
  | "pressure"
  | "eviction"
  | "swap-in"
  | "cycle"
  | "migration";

export interface PlainChapter {
  id: ChapterId;
  title: string;
  /** A few words for the chapter list. */
  short: string;
  /** Two plain sentences that open the chapter. */
  intro: [string, string];
  /** The sections of docs/paths.md the chapter tells. */
  paths: number[];
}

/** A chapter that opens only once another has (the fault-in path follows a first touch). */
const REQUIRES: { readonly [K in ChapterId]?: ChapterId } = {
  "fault-in": "first-touch",
  eviction: "pressure",
  "swap-in": "eviction",
  cycle: "swap-in",
};

/** The purpose or outcome a window's reason names: "first host.page_alloc (purpose anon)" -> "anon". */
function outcome(reason: string): string {
  return /\(\w+ ([\w-]+)\)$/.exec(reason)?.[1] ?? "";
}

const SHADOW_KINDS: Record<string, ChapterId> = {
  "kvm.root_load": "shadow-cr3",
  "guest.cr3_load": "shadow-cr3",
  "kvm.sp_alloc": "shadow-wp",
  "kvm.sp_zap": "shadow-wp",
  "kvm.pte_write": "shadow-emulation",
  "guest.pte_write": "shadow-emulation",
  "kvm.write_flooding": "shadow-emulation",
  "kvm.unsync": "shadow-unsync",
  "kvm.sync_page": "shadow-unsync",
  "kvm.inject_pf": "first-touch",
};

/** The chapter a window's trigger belongs to, or null for one that belongs to none (a workload step, a sample). */
export function chapterOfWindow(reason: string, kind: string, mmu: string): ChapterId | null {
  if (reason.startsWith("steady state")) return "cycle";
  if (!reason.startsWith("first ")) return null;
  const shadow = mmu === "shadow";
  if (shadow && SHADOW_KINDS[kind]) return SHADOW_KINDS[kind]!;
  // Under shadow paging the guest's first touch is its page fault through KVM; a new process is a new root (CR3 exits).
  if (shadow && stageOf(kind) === "guest" && kind !== "guest.pgfault") return null;
  if (kind === "kvm.exit") {
    const r = outcome(reason);
    if (r === "EPT_VIOLATION" || r === "NPF" || r === "EXCEPTION_NMI") return "first-touch";
    if (r === "CR_ACCESS") return "shadow-cr3";
    if (r === "INVLPG") return "shadow-unsync";
    return null;
  }
  if (kind === "host.page_alloc") {
    const p = outcome(reason);
    return p === "swapin" ? "swap-in" : p === "anon" ? "fault-in" : "lazy";
  }
  if (kind === "kvm.fault_retry") return "eviction";
  if (kind === "host.kswapd_sleep") return null;
  if (kind === "host.wp_reuse") return "swap-in";
  switch (stageOf(kind)) {
    case "setup":
      return "lazy";
    case "guest":
      return "first-touch";
    case "fault-in":
      return "fault-in";
    case "aging":
      return "pressure";
    case "eviction":
      return "eviction";
    case "swap-in":
      return "swap-in";
    case "migration":
      return "migration";
    default:
      return null;
  }
}

export interface ChapterGroups {
  /** The plain chapters in the order the run meets them. */
  chapters: PlainChapter[];
  /** For each window, the index of its chapter in `chapters`. */
  of: number[];
}

/** Groups a story's windows (in run order) into plain chapters. */
export function groupWindows(windows: readonly { reason: string; kind: string }[], mmu: string): ChapterGroups {
  const ids: ChapterId[] = [];
  const of: number[] = [];
  for (const w of windows) {
    const id = chapterOfWindow(w.reason, w.kind, mmu);
    const req = id ? REQUIRES[id] : undefined;
    const opens = id !== null && !ids.includes(id) && (req === undefined || ids.includes(req));
    if (opens || ids.length === 0) ids.push(opens ? id : "lazy");
    of.push(ids.length - 1);
  }
  return { chapters: ids.map((id) => plainChapter(id, mmu)), of };
}

/** A chapter's title, opening sentences and paths, in the words of the MMU in use. */
export function plainChapter(id: ChapterId, mmu: string): PlainChapter {
  const w = mmuWords(mmu);
  const shadow = mmu === "shadow";
  const t = w.tables;
  switch (id) {
    case "lazy":
      return {
        id,
        title: "Lazy allocation: QEMU reserves, the host backs on first touch",
        short: "Lazy allocation",
        intro: [
          "QEMU reserves the guest's RAM as one big anonymous mapping in its own address space: address space only, no memory behind it yet.",
          "The host hands out a real page only when something first writes to it, so a fresh VM costs almost nothing.",
        ],
        paths: [1],
      };
    case "first-touch":
      return shadow
        ? {
            id,
            title: "First touch: the guest's page fault goes through KVM",
            short: "First touch",
            intro: [
              "Under shadow paging the hardware walks KVM's shadow tables, not the guest's, so a page the guest never mapped makes the access fault and exit to KVM.",
              "KVM walks the guest's own tables in software to decide whose fault it is: the guest's (it reflects the fault into the guest) or its own (it builds the missing shadow entry).",
            ],
            paths: [2],
          }
        : {
            id,
            title: "First touch and the two-dimensional walk",
            short: "First touch and the 2D walk",
            intro: [
              `On a TLB miss the hardware walks the guest's page tables, and every guest-physical address it meets on the way is itself translated through the ${t} tables: 24 table reads before the data with 4-level tables on both sides.`,
              `The first time the guest touches a page, the ${t} tables have no entry for it, so the walk stops with an ${w.missExit} and the vCPU exits to KVM.`,
            ],
            paths: [3],
          };
    case "fault-in":
      return {
        id,
        title: "The fault-in path: KVM gets a host page and maps it",
        short: "The fault-in path",
        intro: [
          "KVM looks up the memory slot that turns the guest-physical address into QEMU's virtual address, and asks the host for the page there, as if QEMU had touched it.",
          `The host allocates a zeroed page and puts it on its LRU list; KVM installs the ${w.entry} and resumes the guest, whose later accesses to the page hit.`,
        ],
        paths: [4],
      };
    case "shadow-cr3":
      return {
        id,
        title: "CR3 exits: every address-space switch goes through KVM",
        short: "CR3 exits",
        intro: [
          "Under shadow paging the CR3 the guest loads names the guest's own top-level table, which the hardware must not walk, so the load exits to KVM.",
          "KVM finds or builds the shadow root for that table and loads it in the real CR3 before the guest resumes.",
        ],
        paths: [2],
      };
    case "shadow-wp":
      return {
        id,
        title: "Write-protected guest tables: KVM shadows the guest's page tables",
        short: "Write-protected tables",
        intro: [
          "For each guest page table it shadows, KVM builds a shadow page and write-protects the guest's table in its own tables.",
          "From then on a guest write to that table cannot slip by: it faults, and KVM sees every change it must mirror.",
        ],
        paths: [2],
      };
    case "shadow-emulation":
      return {
        id,
        title: "Emulation: a guest page-table write traps and KVM mirrors it",
        short: "Emulation",
        intro: [
          "When the guest writes an entry into a write-protected table, the write exits and KVM emulates the instruction on the guest's behalf.",
          "KVM then updates or drops the shadow entries built from the old value, so the shadow tables stay in step with the guest's.",
        ],
        paths: [2],
      };
    case "shadow-unsync":
      return {
        id,
        title: "Unsync: a leaf table may go out of step until the next flush",
        short: "Unsync",
        intro: [
          "Trapping every write to a busy leaf table is slow, so KVM lets such a table go unsync: the guest writes it with no exit.",
          "At the guest's next CR3 load or INVLPG, KVM re-reads the table and fixes its shadow entries.",
        ],
        paths: [2],
      };
    case "pressure":
      return {
        id,
        title: "Memory pressure and aging",
        short: "Pressure and aging",
        intro: [
          "The guests have touched more memory than the host has free, so free memory falls below a watermark and kswapd wakes to reclaim.",
          `Reclaim scans the LRU lists from the tail and asks each page whether it was used lately: for guest memory, KVM answers from the accessed bit in its ${t} tables.`,
        ],
        paths: [5],
      };
    case "eviction":
      return {
        id,
        title: "Eviction with the mmu_notifier",
        short: "Eviction and the notifier",
        intro: [
          "Reclaim picks a page nobody used lately, gives it a swap slot and follows the reverse map to QEMU's page-table entry.",
          `Before that entry is cleared, the mmu_notifier makes KVM drop its ${w.entries} for the page and flush the vCPUs' TLBs; then the page is written to swap and its frame freed.`,
        ],
        paths: [5],
      };
    case "swap-in":
      return {
        id,
        title: "The re-fault and swap-in",
        short: "Re-fault and swap-in",
        intro: [
          `The guest touches the evicted page again: ${shadow ? "the shadow entry is gone, so the access faults and exits" : `its ${w.entry} is gone, so the access takes an ${w.missExit}`} and KVM asks the host for the page once more.`,
          "This time the host finds a swap entry in QEMU's page table and reads the page back from swap: a major fault, and the guest reads exactly what it wrote.",
        ],
        paths: [4, 5],
      };
    case "cycle":
      return {
        id,
        title: "Round and round: the steady state",
        short: "Steady state",
        intro: [
          "From here the run goes round the whole cycle again and again: pages are faulted in, aged, evicted and swapped back in.",
          "The steps below are samples of that steady state; the counts in the panels keep every event.",
        ],
        paths: [6],
      };
    case "migration":
      return {
        id,
        title: "Dirty logging and live migration",
        short: "Migration",
        intro: [
          `To migrate a running VM, KVM write-protects its ${t} leaves (or clears their dirty bits) so that every page the guest writes is logged.`,
          "QEMU copies the memory while the guest runs, then copies again the pages written meanwhile, until what is left is small enough to stop the guest and send.",
        ],
        paths: [],
      };
  }
}
