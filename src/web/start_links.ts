// SPDX-License-Identifier: MIT
// The start page's three starting points, each a view with its starting state as a link.

import { EXAMPLES } from "./examples.js";
import { formatHash, packText } from "./url_state.js";

/** The example the compare card runs under EPT and under shadow paging (fast: 32,768 accesses). */
export const COMPARE_EXAMPLE = "examples/fault-in.yaml";

export function startLinks(): { walk: string; story: string; compare: string } {
  const text = EXAMPLES[COMPARE_EXAMPLE];
  return {
    // A cold 4+4-level walk, caches off: 24 table reads and the data.
    walk: formatHash({ view: "translate", params: { mode: "ept", levels: "4", gp: "4k", hp: "4k", access: "read" } }),
    // The built-in story: fault-in, reclaim into swap, the re-fault.
    story: formatHash({ view: "story", params: {} }),
    compare: formatHash({
      view: "run",
      params: { ...(text ? { s: packText(text), f: COMPARE_EXAMPLE } : {}), cmp: "mmu", a: "ept", b: "shadow" },
    }),
  };
}
