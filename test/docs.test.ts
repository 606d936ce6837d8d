// SPDX-License-Identifier: MIT
// docs/ stays true: every scenario key and every event kind has its entry, the generated tables
// match the declarations (`npx tsx tools/docs.ts` refreshes them), links between docs resolve,
// and nothing the user reads sends them to design files outside the package.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { EVENT_KINDS } from "../src/sim/sim_events.js";
import { scenarioParamTable } from "../src/sim/scenario_schema.js";
import { GENERATED_DOCS, regenerateDoc } from "../tools/docs.js";

const ROOT = resolve(import.meta.dirname, "..");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

describe("docs/", () => {
  test("every scenario key has an entry in docs/scenario.md", () => {
    const doc = read("docs/scenario.md");
    const missing = scenarioParamTable()
      .map((r) => r.path)
      .filter((p) => !doc.includes(`| \`${p}\` |`));
    expect(missing).toEqual([]);
  });

  test("every event kind has an entry in docs/events.md", () => {
    const doc = read("docs/events.md");
    expect(Object.keys(EVENT_KINDS).filter((k) => !doc.includes(`| \`${k}\` |`))).toEqual([]);
  });

  test.each(GENERATED_DOCS)("%s's generated tables match the code (npx tsx tools/docs.ts)", (doc) => {
    const text = read(doc);
    expect(regenerateDoc(text)).toBe(text);
  });

  test("relative links in README.md and docs/ resolve", () => {
    const files = ["README.md", ...readdirSync(join(ROOT, "docs")).map((f) => `docs/${f}`)];
    const broken: string[] = [];
    for (const f of files)
      for (const m of read(f).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(resolve(dirname(join(ROOT, f)), target))) broken.push(`${f}: ${target}`);
      }
    expect(broken).toEqual([]);
  });

  test("what users read cites docs in the package, not the design files", () => {
    const cites = /SCENARIO\.md|SEED-PATHS/;
    const bad: string[] = [];
    for (const f of ["README.md", ...readdirSync(join(ROOT, "docs")).map((d) => `docs/${d}`)]) if (cites.test(read(f))) bad.push(f);
    for (const f of readdirSync(join(ROOT, "examples"), { recursive: true, encoding: "utf8" }))
      if (f.endsWith(".yaml") && cites.test(read(`examples/${f}`))) bad.push(`examples/${f}`);
    // Messages: string literals in the scenario loader and schema.
    for (const f of ["src/sim/scenario_load.ts", "src/sim/scenario_schema.ts"])
      for (const m of read(f).matchAll(/["`][^"`\n]*["`]/g)) if (cites.test(m[0])) bad.push(`${f}: ${m[0]}`);
    expect(bad).toEqual([]);
  });
});
