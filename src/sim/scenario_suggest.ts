// SPDX-License-Identifier: MIT
// "Did you mean X?" for scenario keys, enum values and names: the closest candidate by
// edit distance (adjacent swaps count as one edit), if it is close enough to be a typo.

/** Common words for a key that the scenario spells differently. */
const SYNONYMS: Readonly<Record<string, string>> = {
  memory: "ram",
  mem: "ram",
  size: "ram",
  cpus: "vcpus",
  ncpus: "vcpus",
  vcpu: "vcpus",
  paging: "mmu",
  mode: "mmu",
  hugepages: "backing",
  pages: "backing",
  procs: "processes",
  workload: "steps",
  workloads: "steps",
  events: "timeline",
  costs: "cost",
};

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1).fill(0);
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[n]!;
}

const normalize = (s: string) => s.toLowerCase().replace(/[-_\s]/g, "");

/**
 * The candidate `word` was most likely meant to be, or undefined when none is close:
 * same letters ignoring case, `-` and `_`; a known synonym; or at most one edit per
 * three letters (at least one, at most three).
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const w = normalize(word);
  const same = candidates.find((c) => normalize(c) === w);
  if (same !== undefined) return same;
  const syn = SYNONYMS[w];
  if (syn !== undefined && candidates.includes(syn)) return syn;
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(w, normalize(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** ` did you mean "x"?` or "" (leading space included, for appending to a sentence). */
export function suggestion(word: string, candidates: readonly string[]): string {
  const s = didYouMean(word, candidates);
  return s === undefined ? "" : ` did you mean "${s}"?`;
}
