#!/usr/bin/env node
// Reports of every shipped example and the built-in story (JSON with events), hashed, so a
// refactor can show it changed no figure: `node tools/golden.mjs > before.txt`, change the code,
// `npm run build`, `node tools/golden.mjs > after.txt`, `diff before.txt after.txt`.
// `--keep DIR` also leaves the reports in DIR. Runs the built CLI (dist/).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const keepAt = process.argv.indexOf("--keep");
const dir = keepAt > 0 ? process.argv[keepAt + 1] : mkdtempSync(join(tmpdir(), "memvirt-golden-"));
mkdirSync(dir, { recursive: true });
const examples = readdirSync("examples")
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => join("examples", f));
const runs = [...examples.map((f) => ({ name: basename(f, ".yaml"), args: [f] })), { name: "built-in-story", args: [] }];
let failed = 0;
for (const r of runs) {
  const json = join(dir, `${r.name}.json`);
  const events = join(dir, `${r.name}.events.jsonl`);
  const p = spawnSync("node", ["dist/bin/memvirt.js", "run", ...r.args, "--json", json, "--events", events], { encoding: "utf8" });
  if (p.status !== 0) {
    failed++;
    console.log(`${r.name} exit ${p.status}: ${(p.stderr || "").trim().split("\n").at(-1)}`);
    continue;
  }
  const hash = (f) => createHash("sha256").update(readFileSync(f)).digest("hex").slice(0, 16);
  console.log(`${r.name} report ${hash(json)} events ${hash(events)}`);
}
if (keepAt < 0) rmSync(dir, { recursive: true, force: true });
process.exit(failed > 0 ? 1 : 0);
