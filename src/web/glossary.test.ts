// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { GLOSSARY, isTermId, mmuTerm, missExitTerm, TERM_IDS } from "./glossary.js";
import { hostPageLabel, translateIntro } from "./mmu_words.js";
import { EXAMPLES } from "./examples.js";
import { COMPARE_EXAMPLE, startLinks } from "./start_links.js";
import { parseHash, unpackText } from "./url_state.js";

/** Every source file of the page, by path (Vite reads them as text). */
const SOURCES = import.meta.glob(["./**/*.ts", "./**/*.tsx", "!./**/*.test.ts"], {
  query: "?raw",
  import: "default",
  eager: true,
}) as Record<string, string>;

describe("glossary", () => {
  test("every entry has a plain definition and names the kernel (or QEMU, or manual) file where it lives", () => {
    expect(TERM_IDS.length).toBe(Object.keys(GLOSSARY).length);
    for (const id of TERM_IDS) {
      const g = GLOSSARY[id];
      expect(g.term.trim(), id).not.toBe("");
      expect(g.text.length, `${id}: definition`).toBeGreaterThan(40);
      expect(g.text, `${id}: definition ends a sentence`).toMatch(/\.$/);
      // A source file (mm/vmscan.c, arch/x86/kvm/mmu/mmu.c, migration/ram.c) and a function in it.
      expect(g.kernel, `${id}: kernel file`).toMatch(/\b[\w-]+(\/[\w.-]+)*\/[\w.-]+\.[ch]\b/);
      expect(g.kernel, `${id}: kernel function`).toMatch(/[\w)]\(\)/);
      for (const s of g.see ?? []) expect(isTermId(s), `${id} sees ${s}`).toBe(true);
    }
  });

  test("the terms the issue names are all there", () => {
    const want =
      "gva gpa hva hpa pfn gfn spte sptep rmap memslot mmu_notifier EPT NPT shadow paging TDP PSC TLB VPID/ASID LRU kswapd swap cache zero page THP hugetlbfs CR3 exit EPT violation NPF A/D bits PML dirty ring KSM balloon";
    const terms = new Set(TERM_IDS.map((id) => GLOSSARY[id].term));
    const missing = ["shadow paging", "swap cache", "zero page", "EPT violation", "A/D bits", "dirty ring"];
    let rest = want;
    for (const m of missing) {
      expect(terms.has(m), m).toBe(true);
      rest = rest.replace(m, "");
    }
    for (const t of rest.split(/\s+/).filter((x) => x !== "")) expect(terms.has(t), t).toBe(true);
  });

  test("every <Term> and glossary link in the page's sources names an existing entry", () => {
    const used = new Set<string>();
    expect(Object.keys(SOURCES)).toContain("./views/story_view.tsx");
    for (const [f, src] of Object.entries(SOURCES)) {
      for (const m of src.matchAll(/<Term\s+id="([^"]+)"/g)) used.add(m[1]!);
      for (const m of src.matchAll(/href="#glossary\/([^"]+)"/g)) used.add(m[1]!);
      for (const m of src.matchAll(/withTerm\("([^"]+)"/g)) used.add(m[1]!);
      // A computed id must come from the glossary's typed helpers (TypeScript checks those).
      for (const m of src.matchAll(/<Term\s+id=\{([^}]+)\}/g)) expect(m[1], f).toMatch(/^(a\.id|s|id|mmuTerm\(.*\)|missExitTerm\(.*\))$/);
    }
    for (const id of used) expect(isTermId(id), `<Term id="${id}"> has no entry`).toBe(true);
    // The scan found the views' terms (it would find none if the pattern broke).
    for (const id of ["gva", "gpa", "hpa", "psc", "tlb", "spte", "lru", "kswapd", "mmu-notifier", "exit", "swap"])
      expect(used.has(id), id).toBe(true);
  });

  test("the MMU helpers name existing entries", () => {
    expect([mmuTerm("ept"), mmuTerm("npt"), mmuTerm("shadow")]).toEqual(["ept", "npt", "shadow-paging"]);
    expect([missExitTerm("ept"), missExitTerm("npt"), missExitTerm("shadow")]).toEqual(["ept-violation", "npf", "page-fault"]);
  });
});

describe("the translate intro by paging mode", () => {
  test("EPT only under EPT, NPT only under NPT, neither under shadow or native", () => {
    expect(translateIntro("ept")).toContain("EPT tables");
    expect(translateIntro("ept")).not.toContain("NPT");
    expect(translateIntro("npt")).toContain("NPT tables");
    expect(translateIntro("npt")).not.toContain("EPT");
    for (const m of ["shadow", "native"]) {
      expect(translateIntro(m)).not.toMatch(/EPT|NPT/);
      expect(hostPageLabel(m)).not.toMatch(/EPT|NPT/);
    }
    expect(translateIntro("shadow")).toContain("shadow tables");
    expect(hostPageLabel("npt")).toBe("Host (NPT) page");
  });
});

describe("the start page's links", () => {
  test("no view in the hash is the start page; #glossary/<id> is an entry", () => {
    expect(parseHash("").view).toBe("home");
    expect(parseHash("#glossary/rmap")).toEqual({ view: "glossary", params: { term: "rmap" } });
    expect(parseHash("#glossary")).toEqual({ view: "glossary", params: {} });
  });

  test("the three cards lead to a 4+4 EPT walk, the built-in story, and fault-in.yaml compared under EPT and shadow", () => {
    const l = startLinks();
    expect(parseHash(l.walk)).toEqual({ view: "translate", params: { mode: "ept", levels: "4", gp: "4k", hp: "4k", access: "read" } });
    expect(parseHash(l.story)).toEqual({ view: "story", params: {} });
    const run = parseHash(l.compare);
    expect(run.view).toBe("run");
    expect([run.params.f, run.params.cmp, run.params.a, run.params.b]).toEqual([COMPARE_EXAMPLE, "mmu", "ept", "shadow"]);
    expect(unpackText(run.params.s!)).toBe(EXAMPLES[COMPARE_EXAMPLE]);
    expect(EXAMPLES[COMPARE_EXAMPLE]).toContain("mmu: ept");
  });
});
