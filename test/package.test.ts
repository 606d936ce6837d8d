// SPDX-License-Identifier: MIT
// The packed package: `npm pack` (of the dist/ built beforehand), unpacked into a fresh
// project's node_modules, runs examples/api/run.mjs through the exports map alone. The
// dependencies are linked from this checkout's node_modules (an offline `npm install` of the
// tarball needs them in npm's cache, which a fresh machine does not have); devDependencies are not.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, test } from "vitest";

const SHIPPED = [
  "LICENSE",
  "README.md",
  "docs/api.md",
  "docs/scenario.md",
  "docs/report.md",
  "docs/events.md",
  "docs/paths.md",
  "docs/cost-model.md",
  "docs/modelled.md",
  "docs/traces.md",
  "examples/traces/true.champsim.gz",
  "examples/api/run.mjs",
  "examples/fault-in.yaml",
  "dist/node.js",
  "dist/bin/memvirt.js",
];
const ROOT = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "memvirt-pack-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function installPacked(): string {
  const out = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT, encoding: "utf8" });
  const tarball = join(dir, (JSON.parse(out) as { filename: string }[])[0]!.filename);
  const proj = join(dir, "proj");
  const pkgDir = join(proj, "node_modules", "memvirt");
  mkdirSync(pkgDir, { recursive: true });
  writeFileSync(join(proj, "package.json"), '{ "name": "consumer", "private": true, "type": "module" }\n');
  execFileSync("tar", ["xzf", tarball, "-C", pkgDir, "--strip-components=1"]);
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) {
    const to = join(proj, "node_modules", dep);
    mkdirSync(join(to, ".."), { recursive: true });
    symlinkSync(join(ROOT, "node_modules", dep), to);
  }
  return proj;
}

describe("the packed package", () => {
  const proj = installPacked();
  const pkgDir = join(proj, "node_modules", "memvirt");

  test("ships the docs, the examples and the licence", () => {
    const missing = SHIPPED.filter((f) => !existsSync(join(pkgDir, f)));
    expect(missing).toEqual([]);
    expect(readFileSync(join(pkgDir, "LICENSE"), "utf8")).toContain("Copyright (c) 2026 the memvirt authors");
  });

  test('examples/api/run.mjs runs a scenario through `import ... from "memvirt"`', () => {
    writeFileSync(join(proj, "run.mjs"), readFileSync(join(pkgDir, "examples/api/run.mjs")));
    const out = execFileSync(process.execPath, ["run.mjs"], { cwd: proj, encoding: "utf8" });
    // 1,024 pages written: one EPT violation each, plus 8 for the guest's own page-table pages
    // (PGD, P4D-folded PUD, PMD, PTEs: __pte_alloc and friends); RSS = those 1,032 pages.
    expect(out).toBe("accesses 1024 exits 1032 ept_violations 1032 rssBytes 4227072\ncold walk references 25\n");
  });

  test("memvirt/node runs a scenario file that replays a trace", () => {
    const script = `import { runScenarioFile } from "memvirt/node";
const r = await runScenarioFile(${JSON.stringify(join(pkgDir, "examples/trace-replay.yaml"))}, { seed: 1 });
console.log(r.scenario.endsWith("trace-replay.yaml"), r.accesses);`;
    writeFileSync(join(proj, "file.mjs"), script);
    const out = execFileSync(process.execPath, ["file.mjs"], { cwd: proj, encoding: "utf8" });
    // The same count `memvirt run examples/trace-replay.yaml --json` reports.
    expect(out).toBe("true 1218598\n");
  });
});
