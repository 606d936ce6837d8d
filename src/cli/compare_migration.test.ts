// SPDX-License-Identifier: MIT
// `memvirt run --compare` over a migration's link: the key reaches the migrate action, and each
// variant's rounds follow the pre-copy arithmetic (migration_iteration_run): a round lasts its
// bytes over the bandwidth, the next one sends what it dirtied, and the last copy comes once what
// is left fits bandwidth x downtime-limit. The slower link takes more rounds and more time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { MigrationReport, Report } from "../sim/report.js";
import { n } from "./format.js";
import { ms, secs } from "./report_migration.js";
import { runCli } from "./run_cli.js";
import { precopyScenario } from "../sim/migration_scenario.fixture.js";

const dir = mkdtempSync(join(tmpdir(), "memvirt-cmpmig-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCENARIO = precopyScenario({ dirtyLog: "{mode: wp}", migrate: "bandwidth: 1MiB, downtimeLimit: 30, rtt: 100" });

/** The pre-copy arithmetic on one migration's own figures. */
function checkArithmetic(m: MigrationReport, bandwidth: number): void {
  expect(m.bandwidthBytesPerSecond).toBe(bandwidth);
  expect(m.forced).toBe(false);
  const it = m.iterations;
  const threshold = bandwidth * 0.03;
  for (let k = 0; k < it.length; k++) {
    const r = it[k]!;
    if (k > 0) expect(r.sentPages).toBe(it[k - 1]!.dirtyPages);
    if (k < it.length - 1) {
      // A round on the link: its bytes at the bandwidth.
      expect(r.seconds).toBeCloseTo(r.bytes / bandwidth, 9);
      expect(r.remainingBytes).toBe(r.dirtyPages * (4096 + 8));
      // Only the round before the last copy fitted the limit.
      if (k < it.length - 2) expect(r.remainingBytes).toBeGreaterThanOrEqual(threshold);
      else expect(r.remainingBytes).toBeLessThan(threshold);
    }
  }
  // The last copy: its bytes, then half a round trip for the destination's go.
  const last = it.at(-1)!;
  expect(m.downtimeSeconds).toBeCloseTo(last.bytes / bandwidth + 50e-6, 9);
  expect(m.totalSeconds).toBeCloseTo(
    it.reduce((t, r) => t + r.seconds, 0),
    9,
  );
}

describe("--compare over a migration's bandwidth", () => {
  test("timeline.0.migrate.bandwidth=1MiB,4MiB: each variant follows the pre-copy arithmetic; the slower link takes more rounds and time", async () => {
    const file = join(dir, "m.yaml");
    writeFileSync(file, SCENARIO);
    const json = join(dir, "c.json");
    const text = await runCli(["run", file, "--compare", "timeline.0.migrate.bandwidth=1MiB,4MiB"]);
    expect(text.code).toBe(0);
    expect((await runCli(["run", file, "--compare", "timeline.0.migrate.bandwidth=1MiB,4MiB", "--json", json])).code).toBe(0);
    const c = JSON.parse(readFileSync(json, "utf8")) as { variants: { label: string; report: Report }[] };
    const [slow, fast] = c.variants.map((v) => v.report.migrations![0]!);
    checkArithmetic(slow!, 2 ** 20);
    checkArithmetic(fast!, 4 * 2 ** 20);
    expect(slow!.iterations.length).toBeGreaterThan(fast!.iterations.length);
    expect(slow!.totalSeconds).toBeGreaterThan(fast!.totalSeconds);
    // The table shows each variant's totals.
    const row = (label: string) =>
      text.stdout
        .split("\n")
        .find((l) => l.includes(`migration vm0: ${label}`))!
        .split("│")
        .slice(2, -1)
        .map((s) => s.trim());
    expect(row("rounds")).toEqual([n(slow!.iterations.length), n(fast!.iterations.length)]);
    expect(row("total time (s)")).toEqual([secs(slow!.totalSeconds), secs(fast!.totalSeconds)]);
    expect(row("downtime (ms)")).toEqual([ms(slow!.downtimeSeconds), ms(fast!.downtimeSeconds)]);
  });

  test("vms.0.dirtyLog.mode=wp,ring reaches the VM: the ring harvests, and the same pages go in every round", async () => {
    const file = join(dir, "m.yaml");
    writeFileSync(file, SCENARIO);
    const json = join(dir, "d.json");
    expect((await runCli(["run", file, "--compare", "vms.0.dirtyLog.mode=wp,ring", "--json", json])).code).toBe(0);
    const c = JSON.parse(readFileSync(json, "utf8")) as { variants: { label: string; report: Report }[] };
    const [wp, ring] = c.variants.map((v) => v.report.migrations![0]!);
    expect([wp!.dirtyLog, ring!.dirtyLog]).toEqual(["get", "ring"]);
    expect(ring!.iterations).toEqual(wp!.iterations);
  });
});
