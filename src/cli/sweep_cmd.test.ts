// SPDX-License-Identifier: MIT
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

function setup(grid = "  mmu: [ept, npt]\n  host.ram: [64MiB, 256MiB]\nseeds: [1, 2]\n") {
  const dir = mkdtempSync(join(tmpdir(), "sweep-"));
  writeFileSync(
    join(dir, "s.yaml"),
    `host: {ram: 64MiB, swap: 128MiB, thp: never}
vms:
  - name: vm0
    ram: 128MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 80MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 2000, writeRatio: 0.5}
`,
  );
  writeFileSync(join(dir, "sweep.yaml"), `scenario: s.yaml\ngrid:\n${grid}`);
  return dir;
}

describe("memvirt sweep", () => {
  test("a 2 x 2 grid on 2 seeds gives 8 rows; the shards together give the same rows", async () => {
    const dir = setup();
    const all = await runCli(["sweep", join(dir, "sweep.yaml"), "--workers", "1"]);
    expect(all.code).toBe(0);
    const rows = parse(all.stdout, { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(8);
    expect(rows.map((r) => `${r["grid.mmu"]} ${r["grid.host.ram"]} ${r.seed}`)).toEqual([
      "ept 64MiB 1",
      "ept 64MiB 2",
      "ept 256MiB 1",
      "ept 256MiB 2",
      "npt 64MiB 1",
      "npt 64MiB 2",
      "npt 256MiB 1",
      "npt 256MiB 2",
    ]);
    expect(rows.every((r) => r["check.dataErrors"] === "0")).toBe(true);
    // No column twice: the grid's are prefixed, the report's follow.
    const head = all.stdout.split("\n")[0]!.split(",");
    expect(new Set(head).size).toBe(head.length);
    expect(head.slice(0, 6)).toEqual(["index", "grid.mmu", "grid.host.ram", "error", "label", "scenario"]);
    // Less host RAM: swapping.
    expect(Number(rows[0]!["host.vmstat.pswpout"])).toBeGreaterThan(0);
    expect(Number(rows[2]!["host.vmstat.pswpout"])).toBe(0);
    const shards: string[] = [];
    for (const s of ["1/3", "2/3", "3/3"]) {
      const out = join(dir, `shard${s[0]}.csv`);
      const r = await runCli(["sweep", join(dir, "sweep.yaml"), "--shard", s, "--workers", "1", "-o", out]);
      expect(r.code).toBe(0);
      shards.push(...readFileSync(out, "utf8").trim().split("\n").slice(1));
    }
    const sortByIndex = (lines: string[]) => [...lines].sort((a, b) => Number(a.split(",")[0]) - Number(b.split(",")[0]));
    expect(sortByIndex(shards)).toEqual(all.stdout.trim().split("\n").slice(1));
  });

  test("bad sweep files and shards exit 2", async () => {
    const dir = setup("  nope: []\n");
    const r = await runCli(["sweep", join(dir, "sweep.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/grid/);
    const r2 = await runCli(["sweep", join(setup(), "sweep.yaml"), "--shard", "4/3"]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/1 <= i <= n/);
    const r3 = await runCli(["sweep", join(setup("  mmu: [ept, warp]\n"), "sweep.yaml")]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/variant mmu=warp/);
  });
});

describe("memvirt run --csv and memvirt plot", () => {
  test("--csv writes a row per VM; plot draws the series as SVG and PNG", async () => {
    const dir = setup();
    const csv = join(dir, "r.csv");
    const json = join(dir, "r.json");
    const r = await runCli(["run", join(dir, "s.yaml"), "--csv", csv, "--json", json]);
    expect(r.code).toBe(0);
    const rows = parse(readFileSync(csv, "utf8"), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(1);
    const report = JSON.parse(readFileSync(json, "utf8"));
    expect(Number(rows[0]!["vms.stats.pf_fixed"])).toBe(report.vms[0].stats.pf_fixed);
    const svg = join(dir, "p.svg");
    expect((await runCli(["plot", json, "-o", svg])).code).toBe(0);
    const text = readFileSync(svg, "utf8");
    expect(text).toMatch(/^<svg/);
    expect(text).toMatch(/QEMU RSS/);
    expect(text).toMatch(/swap-outs/);
    const png = join(dir, "p.png");
    expect((await runCli(["plot", json, "-o", png])).code).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe("PNG");
    const bad = await runCli(["plot", csv, "-o", svg]);
    expect(bad.code).toBe(2);
  });
});

describe("memvirt sweep on worker threads", () => {
  const cli = new URL("../../dist/bin/memvirt.js", import.meta.url).pathname;
  const env = { ...process.env, MEMVIRT_PROGRESS: "lines" };
  test.skipIf(!existsSync(cli))("the built CLI runs the grid on this thread and a worker and gives the in-process rows", async () => {
    const dir = setup("  mmu: [ept, npt]\nseeds: [1, 2]\n");
    const pooled = spawnSync(process.execPath, [cli, "sweep", join(dir, "sweep.yaml"), "--workers", "2"], { encoding: "utf8", env });
    expect(pooled.status).toBe(0);
    expect(pooled.stderr).toMatch(/4 runs on 2 threads/);
    const inProcess = await runCli(["sweep", join(dir, "sweep.yaml"), "--workers", "1"]);
    expect(pooled.stdout).toBe(inProcess.stdout);
    expect(pooled.stdout.trim().split("\n")).toHaveLength(5);
  });

  test.skipIf(!existsSync(cli))(
    "the worker started before the command loads ends when the command fails or has fewer runs than threads",
    () => {
      const dir = setup();
      writeFileSync(join(dir, "bad.yaml"), "scenario: s.yaml\ngrid: {}\n");
      // Without the worker ended, the process would not exit: the timeout turns that into a failure.
      const bad = spawnSync(process.execPath, [cli, "sweep", join(dir, "bad.yaml"), "--workers", "2"], {
        encoding: "utf8",
        env,
        timeout: 20_000,
      });
      expect(bad.signal).toBeNull();
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/an empty grid/);
      const one = spawnSync(process.execPath, [cli, "sweep", join(dir, "sweep.yaml"), "--workers", "3", "--shard", "1/8"], {
        encoding: "utf8",
        env,
        timeout: 20_000,
      });
      expect(one.status).toBe(0);
      expect(one.stderr).toMatch(/1 runs on 1 threads/);
      expect(one.stdout.trim().split("\n")).toHaveLength(2);
    },
  );
});
