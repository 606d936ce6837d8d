// SPDX-License-Identifier: MIT
// The bundled docs/paths.md: every numbered section is found, with its title and a one-line
// summary, in order; the path references the narration makes are recognised.

import { describe, expect, test } from "vitest";
import { STAGE_TITLES } from "../sim/narration.js";
import { PATH_REF, PATHS, parsePaths, pathTitle } from "./paths_doc.js";

describe("docs/paths.md in the page", () => {
  test("the six sections, titled and summarised; a section ends at the next heading", () => {
    expect(PATHS.map((p) => p.n)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(PATHS[3]!.title).toBe("The fault-in path: first touch of a guest page under EPT");
    for (const p of PATHS) expect(p.summary.length, `path ${p.n}`).toBeGreaterThan(20);
    expect(
      parsePaths("# t\n\n## 1. One\n\nBody one.\n\n## 2. Two\n\nBody two.\n\n## Corrections\n\n- x").map((p) => [p.n, p.title, p.body]),
    ).toEqual([
      [1, "One", "Body one."],
      [2, "Two", "Body two."],
    ]);
    // The last section stops before the corrections.
    expect(PATHS[5]!.body).not.toContain("Corrections");
    expect(PATHS[4]!.body).toContain("| 6 | `host.notifier.start`");
  });

  test("titles in the MMU's words; every stage title's path reference is found", () => {
    expect(pathTitle(PATHS[3]!, "npt")).toBe("The fault-in path: first touch of a guest page under NPT");
    expect(pathTitle(PATHS[3]!, "shadow")).toBe("The fault-in path: first touch of a guest page under shadow paging");
    const refs = Object.values(STAGE_TITLES).flatMap((t) => [...t.matchAll(PATH_REF)].map((m) => m[0]));
    expect(refs).toEqual(["path 1", "path 4", "path 3", "path 2", "path 5, steps 1-3", "path 5, steps 4-6", "path 5 step 7", "path 6"]);
    expect([..."(path 2.4)".matchAll(PATH_REF)].map((m) => [m[0], m[1]])).toEqual([["path 2.4", "2"]]);
  });
});
