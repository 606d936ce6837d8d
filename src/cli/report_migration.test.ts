// SPDX-License-Identifier: MIT
// Live migration in `memvirt run`'s reports: the text section's figures are the JSON's
// migrations[] (printed with report_migration.ts's decimals), and the CSV's migration rows
// parse back to the same numbers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, describe, expect, test } from "vitest";
import type { MigrationReport, Report } from "../sim/report.js";
import { n } from "./format.js";
import { mibs, ms, secs } from "./report_migration.js";
import { runCli } from "./run_cli.js";
import { precopyScenario } from "../sim/migration_scenario.fixture.js";

const dir = mkdtempSync(join(tmpdir(), "memvirt-migr-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PRECOPY = precopyScenario({ migrate: "bandwidth: 1MiB, downtimeLimit: 30" });

/** 256 pages written, then post-copy over 4 KiB/s with no round trip: every touched page faults, each waiting its own transfer. */
const POSTCOPY = `
seed: 7
host: {ram: 512MiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 64MiB
    vcpus: 1
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: buf, size: 1MiB}
          - touch: {name: buf, op: write}
          - touch: {name: buf, op: read}
timeline:
  - at: {accesses: 256}
    migrate: {vm: vm0, mode: postcopy, bandwidth: 4KiB, rtt: 0}
`;

async function runBoth(name: string, yaml: string) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const text = await runCli(["run", file]);
  expect(text.code).toBe(0);
  const json = join(dir, `${name}.json`);
  const csv = join(dir, `${name}.csv`);
  expect((await runCli(["run", file, "--json", json, "--csv", csv])).code).toBe(0);
  const report = JSON.parse(readFileSync(json, "utf8")) as Report;
  const rows = parse(readFileSync(csv, "utf8"), { columns: true }) as Record<string, string>[];
  return { text: text.stdout, m: report.migrations![0]!, rows };
}

/** The rows of the section's table, cells trimmed. */
function roundRows(text: string): string[][] {
  const at = text.indexOf("migration of vm0:");
  expect(at).toBeGreaterThan(0);
  const out: string[][] = [];
  for (const l of text.slice(at).split("\n").slice(3)) {
    if (!l.startsWith("│")) break;
    out.push(
      l
        .split("│")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return out;
}

function checkCsv(rows: Record<string, string>[], m: MigrationReport): void {
  const mig = rows.filter((r) => r["migrations.vm"] !== "");
  expect(mig.length).toBe(m.iterations.length + 1);
  m.iterations.forEach((it, k) => {
    const r = mig[k]!;
    expect(r["migrations.vm"]).toBe(m.vm);
    expect(Number(r["migrations.iterations.iteration"])).toBe(it.iteration);
    expect(Number(r["migrations.iterations.sentPages"])).toBe(it.sentPages);
    expect(Number(r["migrations.iterations.dirtyPages"])).toBe(it.dirtyPages);
    expect(Number(r["migrations.iterations.dirtyPagesPerSecond"])).toBe(it.dirtyPagesPerSecond);
    expect(Number(r["migrations.iterations.seconds"])).toBe(it.seconds);
    expect(Number(r["migrations.iterations.remainingBytes"])).toBe(it.remainingBytes);
    expect(r["migrations.totalSeconds"]).toBe("");
  });
  const t = mig.at(-1)!;
  expect(t["migrations.iterations.iteration"]).toBe("");
  expect(t["migrations.iterations.sentPages"]).toBe("");
  expect(Number(t["migrations.sentPages"])).toBe(m.sentPages);
  expect(Number(t["migrations.totalSeconds"])).toBe(m.totalSeconds);
  expect(Number(t["migrations.downtimeSeconds"])).toBe(m.downtimeSeconds);
  expect(Number(t["migrations.sentToRamRatio"])).toBe(m.sentToRamRatio);
  expect(Number(t["migrations.postcopyFaults"])).toBe(m.postcopyFaults);
  expect(Number(t["migrations.postcopyFaultLatencySeconds"])).toBe(m.postcopyFaultLatencySeconds);
  // The VM's own row is still there, its migration columns empty.
  expect(rows.filter((r) => r["migrations.vm"] === "").length).toBe(1);
}

describe("migration reports", () => {
  test("pre-copy: the round table and totals are the JSON's figures; the CSV's rows parse to the same numbers", async () => {
    const { text, m, rows } = await runBoth("pre", PRECOPY);
    expect(m.iterations.length).toBeGreaterThanOrEqual(4);
    expect(roundRows(text)).toEqual(
      m.iterations.map((it) => [
        String(it.iteration),
        n(it.sentPages),
        n(it.dirtyPages),
        n(Math.round(it.dirtyPagesPerSecond)),
        secs(it.seconds),
        mibs(it.remainingBytes),
        `${it.throttlePercent}%`,
      ]),
    );
    expect(text).toContain(`total time ${secs(m.totalSeconds)} s, downtime ${ms(m.downtimeSeconds)} ms\n`);
    expect(text).toContain(
      `pages sent ${n(m.sentPages)} (${n(m.zeroPages)} as zero pages), ${mibs(m.bytes)} MiB; ${m.sentToRamRatio.toFixed(3)} times guest RAM\n`,
    );
    expect(text.replace(/\s+/g, " ")).toContain(
      `vm0 migrated by pre-copy in ${secs(m.totalSeconds)} s and ${m.sentToRamRatio.toFixed(2)} times its RAM on the link: the rest fitted the 30.00 ms downtime limit after ${m.iterations.length} rounds (downtime ${ms(m.downtimeSeconds)} ms).`,
    );
    checkCsv(rows, m);
  });

  test("post-copy: faults, their mean and largest wait (a page's transfer: 4,104 bytes at 4 KiB/s) and background pages", async () => {
    const { text, m, rows } = await runBoth("post", POSTCOPY);
    // 256 data pages and the 4 page-table pages of their walk, each waiting 4,104 / 4,096 s.
    expect(m.postcopyFaults).toBe(260);
    expect(m.postcopyFaultLatencyMaxSeconds).toBeCloseTo(4104 / 4096, 9);
    expect(text).toContain(
      `post-copy faults 260, latency mean ${ms(4104 / 4096)} ms, max ${ms(4104 / 4096)} ms; background pages ${n(m.postcopyBackgroundPages)}\n`,
    );
    // No empty pre-copy round before the post-copy one: one round, the post-copy.
    expect(roundRows(text).map((r) => r[0])).toEqual(["1 post-copy"]);
    checkCsv(rows, m);
  });
});
