// SPDX-License-Identifier: MIT
// The README's `run` examples that claim a difference show one: another seed gives other
// figures, --compare gives columns that differ. Each command is read from the README itself and
// run by the built CLI (dist/bin/memvirt.js) with --json.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { Report } from "../src/sim/report.js";

const ROOT = resolve(import.meta.dirname, "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const dir = mkdtempSync(join(tmpdir(), "memvirt-readme-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The README line that starts with `npx memvirt <prefix>`, as arguments (the comment dropped). */
function readmeCommand(prefix: string): string[] {
  const line = README.split("\n").find((l) => l.startsWith(`npx memvirt ${prefix}`));
  if (line === undefined) throw new Error(`README.md has no line starting "npx memvirt ${prefix}"`);
  return line.replace(/#.*$/, "").trim().split(/\s+/).slice(2);
}

/** Runs the CLI with `args`, the JSON report going to a file (any --json in args is replaced). */
function runJson<T>(args: string[]): T {
  const out = join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  const i = args.indexOf("--json");
  const rest = i < 0 ? args : [...args.slice(0, i), ...args.slice(i + 1).filter((a) => !a.endsWith(".json"))];
  execFileSync(process.execPath, ["dist/bin/memvirt.js", ...rest, "--json", out], { cwd: ROOT, stdio: "ignore" });
  return JSON.parse(readFileSync(out, "utf8")) as T;
}

type Compare = { variants: { label: string; report: Report }[] };

describe("README examples show what they claim", () => {
  test("--seed 7 gives other accesses and other TLB misses than the scenario's seed", () => {
    const args = readmeCommand("run examples/tlb-reach.yaml --seed 7");
    const seven = runJson<Report>(args);
    const one = runJson<Report>(args.filter((a, k) => a !== "--seed" && args[k - 1] !== "--seed"));
    expect([one.seed, seven.seed]).toEqual([1, 7]);
    expect(seven.check.readDigest).not.toBe(one.check.readDigest);
    expect(seven.vms[0]!.hw.tlbMisses).not.toBe(one.vms[0]!.hw.tlbMisses);
  });

  test("--compare host.ram: the smaller host swaps, the larger one does not", () => {
    const c = runJson<Compare>(readmeCommand("run examples/reclaim-swap.yaml --compare host.ram="));
    const swapped = c.variants.map((v) => v.report.host.vmstat.pswpout);
    expect(c.variants.map((v) => v.label)).toEqual(["host.ram=128MiB", "host.ram=256MiB"]);
    expect(swapped[0]).toBeGreaterThan(10_000);
    expect(swapped[1]).toBe(0);
  });

  test("--compare tlb: the misses fall as the TLB covers more of the working set (the figures the README quotes)", () => {
    const c = runJson<Compare>(readmeCommand("run examples/tlb-reach.yaml --compare tlb="));
    expect(c.variants.map((v) => v.report.vms[0]!.mmu)).toEqual(["ept", "ept", "ept"]);
    expect(c.variants.map((v) => v.report.vms[0]!.hw.tlbMisses)).toEqual([339_557, 139_540, 6_144]);
  });
});
