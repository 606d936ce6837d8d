// SPDX-License-Identifier: MIT
// The layer rule of ARCHITECTURE.md: imports point down the order only, and the core
// (hw .. sim) imports nothing that ties it to Node or a terminal, so it runs in a browser.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, test } from "vitest";

const ORDER = ["hw", "host", "kvm", "qemu", "guest", "workload", "sim", "cli", "web"];
const CORE = new Set(["hw", "host", "kvm", "qemu", "guest", "workload", "sim"]);
const NODE_ONLY = ["commander", "@commander-js/extra-typings", "cli-table3", "picocolors", "cli-progress", "piscina"];
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
});
