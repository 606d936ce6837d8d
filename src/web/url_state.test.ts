// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_SCENARIO_YAML } from "../sim/scenario_default.js";
import { formatHash, packText, parseHash, unpackText, parseQuizState, quizParams } from "./url_state.js";

describe("URL state", () => {
  test("a scenario survives packing, and packs small enough for a link", () => {
    const packed = packText(DEFAULT_SCENARIO_YAML);
    expect(packed).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(packed.length).toBeLessThan(DEFAULT_SCENARIO_YAML.length);
    expect(unpackText(packed)).toBe(DEFAULT_SCENARIO_YAML);
    expect(unpackText(packText("é ü ✓\n"))).toBe("é ü ✓\n");
    expect(unpackText("not*packed")).toBeNull();
  });

  test("the hash holds the view and its parameters", () => {
    const h = formatHash({ view: "run", params: { seed: "7", s: packText("seed: 1\n"), empty: "" } });
    expect(h.startsWith("#run&")).toBe(true);
    expect(h).not.toContain("empty");
    const back = parseHash(h);
    expect(back.view).toBe("run");
    expect(back.params.seed).toBe("7");
    expect(unpackText(back.params.s!)).toBe("seed: 1\n");
    // No view named: the start page (a link with a view keeps it).
    expect(parseHash("").view).toBe("home");
    expect(parseHash("#nonsense&x=1")).toEqual({ view: "home", params: { x: "1" } });
    expect(parseHash("#translate").view).toBe("translate");
    const g = formatHash({ view: "glossary", params: { term: "spte" } });
    expect(g).toBe("#glossary/spte");
    expect(parseHash(g)).toEqual({ view: "glossary", params: { term: "spte" } });
  });
});

describe("quiz state in the hash", () => {
  test("mode, quiz kind and question index round-trip through the link; a plain walk adds nothing", () => {
    const s = { tab: "quiz" as const, quiz: "fault" as const, q: 7, ok: 5 };
    const h = formatHash({ view: "translate", params: { gva: "0x1000", ...quizParams(s) } });
    expect(h).toBe("#translate&gva=0x1000&tab=quiz&quiz=fault&q=7&qok=5");
    expect(parseQuizState(parseHash(h).params)).toEqual(s);
    expect(formatHash({ view: "translate", params: quizParams({ tab: "walk", quiz: "walk", q: 3, ok: 3 }) })).toBe("#translate");
    expect(parseQuizState({ tab: "side", q: "x", qok: "9" })).toEqual({ tab: "side", quiz: "walk", q: 0, ok: 0 });
    expect(parseQuizState({ tab: "quiz", q: "4", qok: "9" }).ok).toBe(4);
  });
});
