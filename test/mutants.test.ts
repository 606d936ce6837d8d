// SPDX-License-Identifier: MIT
// The mutation suite in CI: every mutant's edit still applies to the code (so the catalogue
// follows the code), and the fast half of the mutants is caught (all of them: npm run mutants).
import { spawnSync } from "node:child_process";
import { expect, test } from "vitest";

const run = (...args: string[]) => spawnSync("node", ["tools/mutants.mjs", ...args], { encoding: "utf8" });

test("every mutant's text is in the code exactly once", () => {
  const r = run("--verify");
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
});

test("the fast mutants are all caught, none by hanging", { timeout: 600_000 }, () => {
  const r = run("--fast");
  expect(r.stdout).toMatch(/^6 of 6 mutants caught$/m);
  expect(r.status).toBe(0);
});
