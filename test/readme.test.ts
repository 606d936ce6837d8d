// SPDX-License-Identifier: MIT
// The README stays true: its generated tables match the registries they come from.
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { regenerate } from "../tools/readme.js";

test("README's parameter, counter and cost tables match the code (run `npx tsx tools/readme.ts` to refresh)", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  expect(regenerate(readme)).toBe(readme);
});
