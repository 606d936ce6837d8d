// SPDX-License-Identifier: MIT
// The CLI bundle (tools/bundle-cli.mjs, dist/bin/ of the build): what every `memvirt` start parses.
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, test } from "vitest";

const BIN = resolve(import.meta.dirname, "..", "dist", "bin");
const bundle = () =>
  readdirSync(BIN)
    .filter((f) => f.endsWith(".js"))
    .map((f) => readFileSync(join(BIN, f), "utf8"))
    .join("\n");

describe("the CLI bundle", () => {
  test("carries zod's English messages and none of its other languages", () => {
    const js = bundle();
    expect(js).toContain("Invalid input: expected");
    // The same message in Italian, Dutch and Indonesian (ASCII: esbuild escapes other characters).
    for (const foreign of ["Input non valido", "Ongeldige invoer", "Input tidak valid"]) expect(js).not.toContain(foreign);
  });
});
