// SPDX-License-Identifier: MIT
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

const dir = mkdtempSync(join(tmpdir(), "memvirt-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh directory per test, so "no file left behind" can be checked by listing it. */
function scratch(files: Record<string, string>): string {
  const at = mkdtempSync(join(dir, "t-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(at, name), text);
  return at;
}

const SMALL = `# a small first-touch run
seed: 3
host: {ram: 256MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 128MiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 4MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 5000, writeRatio: 0.3}
`;

/** The figure in the text report's row for `counter` (first table that has it). */
function textFigure(text: string, counter: string): number {
  const m = new RegExp(`│ ${counter} +│ +([0-9,]+) │`).exec(text);
  if (!m) throw new Error(`no ${counter} row in:\n${text}`);
  return Number(m[1]!.replaceAll(",", ""));
}

describe("memvirt run", () => {
  test("a scenario file: the text report, exit 0, no colour when not a TTY", async () => {
    const d = scratch({ "small.yaml": SMALL });
    const r = await runCli(["run", join(d, "small.yaml")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const s of ["host", "VM vm0", "KVM counters", "exits by reason", "QEMU process", "guest kernel", "hardware", "cost:"]) {
      expect(r.stdout).toContain(s);
    }
    expect(r.stdout).toContain("EPT_VIOLATION");
    expect(r.stdout).toContain("OK: every value read back as written; no stale mapping");
    const summary = r.stdout.slice(r.stdout.indexOf("\nsummary\n")).replaceAll("\n", " ");
    expect(summary).toContain("took an EPT violation and a host fault");
    expect(summary).toContain("Every value read back as written");
    expect(r.stdout.includes("\u001b[")).toBe(false);
    expect(textFigure(r.stdout, "pf_fixed")).toBeGreaterThan(1024);
  });

  test("--json out.json writes the report; its pf_fixed is the text report's; nothing else is left in the directory", async () => {
    const d = scratch({ "small.yaml": SMALL });
    const file = join(d, "small.yaml");
    const out = join(d, "out.json");
    const [text, json] = await Promise.all([runCli(["run", file]), runCli(["run", file, "--json", out])]);
    expect(json.code).toBe(0);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.memvirt).toBe("2.0.0");
    expect(report.format).toBe(2);
    expect(report.scenario).toBe(file);
    expect(report.vms[0].stats.pf_fixed).toBe(textFigure(text.stdout, "pf_fixed"));
    expect(report.vms[0].stats.pf_fixed).toBe(report.host.vmstat.pgfault);
    expect(json.stdout).toContain("VM vm0"); // the text report still goes to stdout
    expect(readdirSync(d).sort()).toEqual(["out.json", "small.yaml"]);
  });

  test("--json with no file, or -, prints the JSON instead of the text report", async () => {
    const d = scratch({ "small.yaml": SMALL });
    for (const args of [["--json"], ["--json", "-"]]) {
      const r = await runCli(["run", join(d, "small.yaml"), ...args]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).vms[0].name).toBe("vm0");
    }
  });

  test("--events writes JSONL with the KVM exits and host faults, one line per exit", async () => {
    const d = scratch({ "small.yaml": SMALL });
    const events = join(d, "ev.jsonl");
    const r = await runCli(["run", join(d, "small.yaml"), "--events", events, "--json", join(d, "r.json")]);
    expect(r.code).toBe(0);
    const lines = readFileSync(events, "utf8").trimEnd().split("\n");
    const kinds = new Map<string, number>();
    for (const l of lines) {
      const e = JSON.parse(l);
      expect(typeof e.t).toBe("number");
      kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    }
    expect(kinds.has("kvm.exit")).toBe(true);
    expect(kinds.has("host.fault")).toBe(true);
    // The stream starts before the machine is built, so it holds every exit and fault.
    const report = JSON.parse(readFileSync(join(d, "r.json"), "utf8"));
    expect(kinds.get("kvm.exit")).toBe(report.vms[0].stats.exits);
    expect(kinds.get("host.fault")).toBe(report.host.vmstat.pgfault);
  });

  test("a bad scenario exits 2 with file:line:col messages and writes no --json or --events file", async () => {
    const bad = SMALL.replace("ram: 128MiB", "ram: 12 potatoes").replace("mmu: ept", "mmuu: ept");
    const d = scratch({ "bad.yaml": bad });
    const file = join(d, "bad.yaml");
    const r = await runCli(["run", file, "--json", join(d, "out.json"), "--events", join(d, "ev.jsonl")]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:6:10: vms\\[0\\]\\.ram: .*potatoes`));
    expect(lines[1]).toMatch(/:7:5: vms\[0\]\.mmuu: unknown key "mmuu"; did you mean "mmu"\?$/);
    expect(readdirSync(d)).toEqual(["bad.yaml"]);
  });

  test("a missing scenario file exits 2 and says so", async () => {
    const d = scratch({});
    const r = await runCli(["run", join(d, "nope.yaml"), "--json", join(d, "out.json")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^memvirt: cannot read scenario .*nope\.yaml: no such file or directory; give a scenario file \(YAML or JSON; see examples\/\)\n$/,
    );
    expect(existsSync(join(d, "out.json"))).toBe(false);
  });

  test("--json naming a YAML file is refused (it would overwrite the scenario)", async () => {
    const d = scratch({ "small.yaml": SMALL });
    const r = await runCli(["run", "--json", join(d, "small.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("looks like a scenario file");
    expect(readFileSync(join(d, "small.yaml"), "utf8")).toBe(SMALL);
  });

  test("a run that fails (the host OOM-kills QEMU) exits 1 with 'run failed' and leaves no partial file", async () => {
    const oom = `host: {ram: 64MiB, swap: 0}
vms:
  - name: vm0
    ram: 256MiB
    processes:
      - name: p0
        steps:
          - touch: {size: 128MiB, op: write}
`;
    const d = scratch({ "oom.yaml": oom });
    const r = await runCli(["run", join(d, "oom.yaml"), "--json", join(d, "out.json"), "--events", join(d, "ev.jsonl")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^memvirt: run failed: .*Out of memory/);
    expect(readdirSync(d)).toEqual(["oom.yaml"]);
  });

  test("a run whose checker finds lost data exits 1, says so in its last line, and still writes its report", async () => {
    // QEMU discards guest RAM (MADV_DONTNEED) while the guest still uses it: every read is a data error.
    const lossy = `${SMALL.replace("          - random: {name: heap, accesses: 5000, writeRatio: 0.3}", "          - touch: {name: heap, op: read}")}
timeline:
  - at: {accesses: 1024}
    madvise: {vm: vm0, gpa: 0, size: 128MiB, advice: DONTNEED}
`;
    const d = scratch({ "lossy.yaml": lossy });
    const r = await runCli(["run", join(d, "lossy.yaml"), "--json", join(d, "out.json")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAILED: 1,024 data errors, 0 invariant violations");
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe("memvirt: run is not clean: the checker found 1024 data errors; exit 1");
    expect(JSON.parse(readFileSync(join(d, "out.json"), "utf8")).check.dataErrors).toBe(1024);
    const cmp = await runCli(["run", join(d, "lossy.yaml"), "--compare", "mmu=ept,shadow"]);
    expect(cmp.code).toBe(1);
    expect(cmp.stderr).toContain("memvirt: run mmu=shadow is not clean");
  });

  test("the same seed twice gives identical JSON; --seed overrides the scenario's", async () => {
    const d = scratch({ "small.yaml": SMALL });
    const file = join(d, "small.yaml");
    const [a, b, c] = await Promise.all([
      runCli(["run", file, "--json", "--seed", "5"]),
      runCli(["run", file, "--json", "--seed", "5"]),
      runCli(["run", file, "--json"]),
    ]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(JSON.parse(a.stdout).seed).toBe(5);
    expect(JSON.parse(c.stdout).seed).toBe(3);
  });

  test("--seed and --sample must be whole numbers", async () => {
    const r = await runCli(["run", "--seed", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--seed: 'x' is not a seed");
    const s = await runCli(["run", "--sample", "-1"]);
    expect(s.code).toBe(2);
  });
});
