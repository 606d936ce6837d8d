// SPDX-License-Identifier: MIT
// The layer rule of ARCHITECTURE.md: imports point down the order only, and the core
// (hw .. sim) imports nothing that ties it to Node or a terminal, so it runs in a browser.
// Within hw/ and kvm/: no import cycle (type imports count) and no file over 600 lines (biome
// holds their functions to 80 lines: biome.json's overrides).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, test } from "vitest";

const ORDER = ["hw", "host", "kvm", "qemu", "guest", "workload", "sim", "cli", "web"];
const CORE = new Set(["hw", "host", "kvm", "qemu", "guest", "workload", "sim"]);
const NODE_ONLY = ["commander", "@commander-js/extra-typings", "cli-table3", "picocolors", "cli-progress"];
const SRC = resolve(import.meta.dirname, "../src");

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|tsx)$/.test(name) && !/\.test\./.test(name)) yield p;
  }
}

const layerOf = (file: string) => relative(SRC, file).split(sep)[0]!;
const rank = (layer: string) => (layer === "web" ? ORDER.indexOf("cli") : ORDER.indexOf(layer));

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
    (m) => (m[1] ?? m[2])!,
  );
}

describe("layers", () => {
  const files = [...sources(SRC)];

  test("there are sources in several layers to check", () => {
    expect(new Set(files.map(layerOf)).size).toBeGreaterThanOrEqual(3);
  });

  test("every import points down the layer order (cli and web are peers at the top)", () => {
    const up: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      if (!ORDER.includes(from)) continue;
      for (const spec of imports(file)) {
        if (!spec.startsWith(".")) continue;
        const to = layerOf(resolve(dirname(file), spec));
        if (!ORDER.includes(to) || to === from) continue;
        if (rank(to) > rank(from) || (from === "cli" && to === "web") || (from === "web" && to === "cli")) {
          up.push(`${relative(SRC, file)} imports ${spec} (${from} -> ${to})`);
        }
      }
    }
    expect(up).toEqual([]);
  });

  test("the core imports no node: module and no terminal-only package", () => {
    const bad: string[] = [];
    for (const file of files) {
      if (!CORE.has(layerOf(file))) continue;
      for (const spec of imports(file)) {
        if (spec.startsWith("node:") || NODE_ONLY.includes(spec)) bad.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test("hw/ and kvm/ have no import cycle, type-only imports included", () => {
    for (const layer of ["hw", "kvm"]) {
      const mine = files.filter((f) => layerOf(f) === layer);
      const deps = new Map(
        mine.map((f) => [
          f,
          imports(f)
            .map((spec) => resolve(dirname(f), spec.replace(/\.js$/, ".ts")))
            .filter((d) => mine.includes(d)),
        ]),
      );
      const cycles: string[] = [];
      const state = new Map<string, "open" | "done">();
      const visit = (f: string, path: string[]): void => {
        if (state.get(f) === "done") return;
        if (state.get(f) === "open") {
          cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(" -> "));
          return;
        }
        state.set(f, "open");
        for (const d of deps.get(f)!) visit(d, [...path, f]);
        state.set(f, "done");
      };
      for (const f of mine) visit(f, []);
      expect(cycles, layer).toEqual([]);
    }
  });

  test("no file in hw/ or kvm/ is over 600 lines, tests included", () => {
    const long: string[] = [];
    for (const layer of ["hw", "kvm"]) {
      for (const name of readdirSync(join(SRC, layer))) {
        if (!/\.tsx?$/.test(name)) continue;
        const lines = readFileSync(join(SRC, layer, name), "utf8").split("\n").length - 1;
        if (lines > 600) long.push(`${layer}/${name}: ${lines} lines`);
      }
    }
    expect(long).toEqual([]);
  });
});
