// SPDX-License-Identifier: MIT
// Issue 11 item 1: bad input of every command is refused before any work: exit 2, a message
// naming the place (file:line:col, the key or the option) and the fix, and no file left behind.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "fflate";
import { afterAll, describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

const dir = mkdtempSync(join(tmpdir(), "memvirt-bad-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const LACKEY = "==1== Lackey\nI  0400000,4\n S 7ff000100,8\n L 7ff000200,8\n".repeat(200);
const scenario = (steps: string, extra = "") => `host: {ram: 256MiB}
vms:
  - name: vm0
    ram: 128MiB${extra}
    processes:
      - name: p0
        steps:
${steps
  .split("\n")
  .map((l) => `          ${l}`)
  .join("\n")}
`;
const OK = scenario("- touch: {size: 1MiB, op: write}");
const gz = gzipSync(new TextEncoder().encode(LACKEY));

const files: Record<string, string | Uint8Array> = {
  "ok.yaml": OK,
  "t.lackey": LACKEY,
  "empty.lackey": "",
  "logonly.lackey": "==1== Lackey, a memory tracer\n\n",
  "garbage.lackey": "hello world\n",
  "header.mvt": new Uint8Array([0x4d, 0x56, 0x54, 0x52, 1, 0, 0, 0]),
  "gzheader.gz": gz.slice(0, 10),
  "cut.gz": gz.slice(0, Math.floor(gz.length / 2)),
  "notrailer.gz": gz.slice(0, gz.length - 4),
  "huge.yaml": scenario("- random: {size: 1MiB, accesses: 9007199254740991, writeRatio: 0}"),
  "churn.yaml": scenario("- mmapChurn: {iterations: 1_000_000_000_000_000, size: 64KiB}"),
  "churn0.yaml": scenario("- mmapChurn: {iterations: 1_000_000_000_000, size: 64KiB, touch: 0}"),
  "host2t.yaml": OK.replace("ram: 256MiB", "ram: 2TiB"),
  "swap.yaml": OK.replace("{ram: 256MiB}", "{ram: 256MiB, swap: 64TiB}"),
  "guest2t.yaml": OK.replace("ram: 128MiB", "ram: 2TiB"),
  "prealloc.yaml": OK.replace("{ram: 256MiB}", "{ram: 1TiB}").replace("ram: 128MiB", "ram: 512GiB\n    prealloc: true"),
  "vms.yaml": `host: {ram: 64GiB}\nvms:\n${Array.from({ length: 2000 }, (_, i) => `  - {name: v${i}, ram: 16MiB}`).join("\n")}\n`,
  "limits0.yaml": `${OK}limits: {accesses: 0}\n`,
  "limitslow.yaml": `${scenario("- random: {size: 1MiB, accesses: 5000, writeRatio: 0}")}limits: {accesses: 1000}\n`,
  "trace-missing.yaml": scenario("- touch: {size: 1MiB, op: read}\n- trace: {file: nope.lackey}"),
  "trace-empty.yaml": scenario("- trace: {file: empty.lackey}"),
  "trace-logonly.yaml": scenario("- trace: {file: logonly.lackey}"),
  "trace-garbage.yaml": scenario("- trace: {file: garbage.lackey}"),
  "trace-header.yaml": scenario("- trace: {file: header.mvt}"),
  "trace-gzheader.yaml": scenario("- trace: {file: gzheader.gz}"),
  "trace-cut.yaml": scenario("- trace: {file: cut.gz}"),
  "trace-notrailer.yaml": scenario("- trace: {file: notrailer.gz}"),
  "trace-dir.yaml": scenario("- trace: {file: adir}"),
  "trace-fifo.yaml": scenario("- trace: {file: fifo}"),
  "trace-ok.yaml": scenario("- trace: {file: t.lackey}"),
  "bad.yaml": OK.replace("op: write", "op: wirte"),
  "sweep-badbase.yaml": "scenario: bad.yaml\ngrid: {mmu: [ept, npt]}\n",
  "sweep-badpoint.yaml": "scenario: ok.yaml\ngrid: {mmu: [ept, warp]}\n",
  "sweep-phantom.yaml": "scenario: ok.yaml\ngrid:\n  vms[5].ram: [1GiB, 2GiB]\n",
  "sweep-limit.yaml": "scenario: ok.yaml\ngrid: {host.ram: [256MiB, 2TiB]}\n",
  "sweep-big.yaml": `scenario: ok.yaml\ngrid:\n${["a", "b", "c", "d", "e"].map((k) => `  cost.${k}: [1, 2, 3, 4, 5, 6, 7]`).join("\n")}\n`,
  "sweep-syntax.yaml": "scenario: ok.yaml\ngrid: {mmu: [ept, npt]\n",
  "sweep-nogrid.yaml": "scenario: ok.yaml\ngrid: {}\n",
  "sweep-noscenario.yaml": "scenario: missing.yaml\ngrid: {mmu: [ept, npt]}\n",
  "sweep-trace.yaml": "scenario: trace-cut.yaml\ngrid: {mmu: [ept, npt]}\n",
  "sweep-ok.yaml": "scenario: ok.yaml\ngrid: {mmu: [ept, npt]}\n",
  "cmp-null.json": JSON.stringify({ memvirt: "compare", variants: null }),
  "cmp-empty.json": JSON.stringify({ memvirt: "compare", variants: [] }),
  "series-strings.json": JSON.stringify({ series: ["a", "b"] }),
  "series-numbers.json": JSON.stringify({ series: [1, 2, 3] }),
  "series-badfield.json": JSON.stringify({
    series: [{ accesses: 0, rssBytes: "x", freeBytes: 0, swapUsedBytes: 0, faults: 0, exits: 0, swapIns: 0, swapOuts: 0 }],
  }),
  "series-format1.json": JSON.stringify({
    series: [{ accesses: 0, rss: 0, free: 0, swapUsed: 0, faults: 0, exits: 0, swapIns: 0, swapOuts: 0 }],
  }),
  "notjson.json": "{ nope",
};
for (const [name, body] of Object.entries(files)) writeFileSync(at(name), body);
// xz traces (src/workload/xz.ts): the shipped ChampSim fixture cut short, and with a byte flipped in its block.
const XZ = Uint8Array.from(readFileSync(new URL("../../examples/traces/true.champsim.xz", import.meta.url)));
writeFileSync(at("cut.xz"), XZ.subarray(0, 2000));
XZ[1000]! ^= 0x10;
writeFileSync(at("flip.xz"), XZ);
writeFileSync(at("trace-cutxz.yaml"), scenario("- trace: {file: cut.xz}"));
writeFileSync(at("trace-flipxz.yaml"), scenario("- trace: {file: flip.xz}"));
mkdirSync(at("adir"));
execFileSync("mkfifo", [at("fifo")]);

/** Every file under dir, with its size, to see that a refused command wrote nothing. */
function listing(): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name));
}

const cases: [string, string[], RegExp][] = [
  // Sizes beyond what the model supports (were internal errors).
  ["host RAM over 1 TiB", ["run", at("host2t.yaml")], /host2t\.yaml:1:\d+: host\.ram: 2TiB is too large; at most 1TiB/],
  ["64 TiB of swap", ["run", at("swap.yaml")], /swap\.yaml:1:\d+: host\.swap: 64TiB is too large; at most 8TiB/],
  ["guest RAM over 1023 GiB", ["run", at("guest2t.yaml")], /guest2t\.yaml:4:10: vms\[0\]\.ram: 2TiB is too large; at most 1023GiB/],
  // Work beyond the bounds (were hangs).
  [
    "2^53-1 random accesses",
    ["run", at("huge.yaml")],
    /huge\.yaml:8:21: vms\[0\]\.processes\[0\]\.steps\[0\]\.random: the run plans .* --force/,
  ],
  [
    "10^15 mmapChurn iterations",
    ["run", at("churn.yaml")],
    /churn\.yaml:8:24: .*steps\[0\]\.mmapChurn: the run plans 1\.60e\+16 guest accesses/,
  ],
  ["10^12 churn rounds that touch nothing", ["check", at("churn0.yaml")], /steps\[0\]\.mmapChurn: the run plans .* limits: \{accesses:/],
  ["2,000 VMs", ["run", at("vms.yaml")], /vms\.yaml:3:3: vms: 2000 VMs; at most 64 without --force/],
  ["512 GiB preallocated", ["run", at("prealloc.yaml")], /vms\[0\]\.ram: the model would need about .* GiB of memory.*limits: \{memory:/],
  ["limits below 1", ["run", at("limits0.yaml")], /limits\.accesses: 0 is too small; at least 1/],
  ["a run over its own limits:", ["run", at("limitslow.yaml")], /steps\[0\]\.random: the run plans 5,000 guest accesses.*at most 1,000/],
  // Traces, found before the run (were found when their step was reached).
  [
    "a missing trace",
    ["run", at("trace-missing.yaml")],
    /trace-missing\.yaml:9:27: vms\[0\]\.processes\[0\]\.steps\[1\]\.trace\.file: cannot open .*nope\.lackey: no such file or directory; trace paths are relative to the scenario file/,
  ],
  ["an empty trace", ["run", at("trace-empty.yaml")], /steps\[0\]\.trace\.file: trace .*empty\.lackey holds no accesses/],
  [
    "a trace of log lines only",
    ["run", at("trace-logonly.yaml")],
    /logonly\.lackey holds no accesses \(no Lackey access lines, 2 log or blank lines\)/,
  ],
  [
    "a trace that is not a trace",
    ["run", at("trace-garbage.yaml")],
    /steps\[0\]\.trace\.file: .*garbage\.lackey:1: not a Lackey access line/,
  ],
  ["a memvirt trace header alone", ["run", at("trace-header.yaml")], /header\.mvt holds no accesses/],
  [
    "a gzip header alone",
    ["run", at("trace-gzheader.yaml")],
    /steps\[0\]\.trace\.file: .*gzheader\.gz: the gzip stream is (truncated|corrupt)/,
  ],
  [
    "a gzip trace cut in half",
    ["run", at("trace-cut.yaml")],
    /steps\[0\]\.trace\.file: .*cut\.gz: the gzip stream is corrupt or truncated/,
  ],
  ["a gzip trace without its trailer", ["run", at("trace-notrailer.yaml")], /notrailer\.gz: the gzip stream is (truncated|corrupt)/],
  [
    "an xz trace cut short",
    ["run", at("trace-cutxz.yaml")],
    /steps\[0\]\.trace\.file: .*cut\.xz: the xz stream is truncated at byte offset 2000: the file ends inside an LZMA chunk/,
  ],
  [
    "an xz trace with a flipped byte",
    ["run", at("trace-flipxz.yaml")],
    /steps\[0\]\.trace\.file: .*flip\.xz: the xz stream is corrupt at byte offset 1113: .*copy or download it again/,
  ],
  ["a trace that is a directory", ["run", at("trace-dir.yaml")], /steps\[0\]\.trace\.file: .*adir: it is a directory/],
  ["a trace that is a FIFO", ["run", at("trace-fifo.yaml")], /steps\[0\]\.trace\.file: .*fifo: it is a FIFO/],
  ["check: a corrupt trace", ["check", at("trace-cut.yaml")], /steps\[0\]\.trace\.file: .*cut\.gz/],
  // Scenario files that are not files.
  ["a FIFO as scenario", ["run", at("fifo")], /cannot read scenario .*fifo: it is a FIFO/],
  ["a directory as scenario", ["run", at("adir")], /cannot read scenario .*adir: it is a directory/],
  ["check: a FIFO as scenario", ["check", at("fifo")], /cannot read scenario .*fifo: it is a FIFO/],
  // Outputs checked before the run (were found after it).
  [
    "--json in a missing directory",
    ["run", at("ok.yaml"), "--json", at("no/out.json")],
    /--json .*no\/out\.json: the directory .* does not exist; create it/,
  ],
  ["--csv in a missing directory", ["run", at("ok.yaml"), "--csv", at("no/out.csv")], /--csv .*does not exist/],
  ["--events in a missing directory", ["run", at("ok.yaml"), "--events", at("no/e.jsonl")], /--events .*does not exist/],
  ["--json is a directory", ["run", at("ok.yaml"), "--json", at("adir")], /--json .*adir: is a directory; give a file name in it/],
  [
    "--json over a trace the run reads",
    ["run", at("trace-ok.yaml"), "--json", at("t.lackey")],
    /--json .*t\.lackey: that is an input of this command/,
  ],
  [
    "--json and --csv the same file",
    ["run", at("ok.yaml"), "--json", at("o.json"), "--csv", at("o.json")],
    /--json and --csv both write to .*o\.json; give two different files/,
  ],
  // --compare.
  [
    "--compare of a VM that does not exist",
    ["run", at("ok.yaml"), "--compare", "vms[5].ram=1GiB,2GiB"],
    /vms\[5\]\.ram=1GiB:\n.*override vms\[5\]\.ram: the scenario has no vms\[5\] \(vms\[0\] to vms\[0\]\)/,
  ],
  ["--compare with --events", ["run", at("ok.yaml"), "--compare", "mmu=ept,npt", "--events", at("e.jsonl")], /--events with --compare/],
  [
    "--compare --json in a missing directory",
    ["run", at("ok.yaml"), "--compare", "mmu=ept,npt", "--json", at("no/c.json")],
    /--json .*does not exist/,
  ],
  [
    "--compare --json over the scenario",
    ["run", at("ok.yaml"), "--compare", "mmu=ept,npt", "--json", at("ok.yaml")],
    /that is an input of this command/,
  ],
  [
    "--compare to a size beyond the limit",
    ["run", at("ok.yaml"), "--compare", "host.ram=1GiB,2TiB"],
    /host\.ram=2TiB:\n.*host\.ram: 2TiB is too large/,
  ],
  [
    "--compare to an invalid value",
    ["run", at("ok.yaml"), "--compare", "mmu=ept,warp"],
    /mmu=warp:\n.*vms\[0\]\.mmu: "warp" is not a valid mmu/,
  ],
  // check.
  ["check --schedules 0", ["check", at("ok.yaml"), "--schedules", "0"], /--schedules 0 would check nothing; give 1 or more/],
  [
    "check of an invalid scenario",
    ["check", at("bad.yaml")],
    /bad\.yaml:8:37: vms\[0\]\.processes\[0\]\.steps\[0\]\.touch\.op: "wirte" is not a valid op/,
  ],
  // sweep.
  [
    "a sweep whose scenario is invalid",
    ["sweep", at("sweep-badbase.yaml")],
    /sweep-badbase\.yaml: scenario bad\.yaml is not valid:\n.*bad\.yaml:8:37: .*touch\.op: "wirte"/,
  ],
  ["a sweep with an invalid grid point", ["sweep", at("sweep-badpoint.yaml")], /variant mmu=warp:\n.*vms\[0\]\.mmu/],
  ["a sweep of a VM that does not exist", ["sweep", at("sweep-phantom.yaml")], /override vms\[5\]\.ram: the scenario has no vms\[5\]/],
  [
    "a sweep point beyond a limit",
    ["sweep", at("sweep-limit.yaml")],
    /variant host\.ram=2TiB:\n.*host\.ram: 2TiB is too large; at most 1TiB/,
  ],
  ["a sweep of 16,807 runs", ["sweep", at("sweep-big.yaml")], /sweep-big\.yaml:3:3: grid: 16,807 runs .* at most 10,000 in one sweep file/],
  ["a sweep file that is not YAML", ["sweep", at("sweep-syntax.yaml")], /sweep-syntax\.yaml:\d+:\d+: .*valid YAML/],
  ["a sweep with an empty grid", ["sweep", at("sweep-nogrid.yaml")], /sweep-nogrid\.yaml:2:7: grid: an empty grid/],
  [
    "a sweep of a missing scenario",
    ["sweep", at("sweep-noscenario.yaml")],
    /cannot read scenario missing\.yaml of .*missing\.yaml: no such file/,
  ],
  [
    "a sweep of a scenario with a corrupt trace",
    ["sweep", at("sweep-trace.yaml")],
    /variant mmu=ept:\n.*steps\[0\]\.trace\.file: .*cut\.gz/,
  ],
  ["a sweep -o in a missing directory", ["sweep", at("sweep-ok.yaml"), "-o", at("no/s.csv")], /--output .*does not exist/],
  [
    "a sweep -o over its own sweep file",
    ["sweep", at("sweep-ok.yaml"), "-o", at("sweep-ok.yaml")],
    /--output .*sweep-ok\.yaml: that is an input/,
  ],
  ["a sweep -o over its scenario", ["sweep", at("sweep-ok.yaml"), "-o", at("ok.yaml")], /--output .*ok\.yaml: that is an input/],
  ["a FIFO as sweep file", ["sweep", at("fifo")], /cannot read sweep file .*fifo: it is a FIFO/],
  ["sweep --workers abc", ["sweep", at("sweep-ok.yaml"), "--workers", "abc"], /--workers abc: a whole number/],
  // plot.
  [
    "plot of a compare report with variants: null",
    ["plot", at("cmp-null.json"), "-o", at("p.svg")],
    /cmp-null\.json: variants: not a list of variants/,
  ],
  [
    "plot of a compare report with no variants",
    ["plot", at("cmp-empty.json"), "-o", at("p.svg")],
    /cmp-empty\.json: variants: no variants/,
  ],
  ["plot of a series of strings", ["plot", at("series-strings.json"), "-o", at("p.svg")], /series-strings\.json: series\[0\]: /],
  ["plot of a series of numbers", ["plot", at("series-numbers.json"), "-o", at("p.svg")], /series-numbers\.json: series\[0\]: /],
  ["plot of a point with a string", ["plot", at("series-badfield.json"), "-o", at("p.svg")], /series\[0\]\.rssBytes: "x" is not a number/],
  [
    "plot of a report from before format 2",
    ["plot", at("series-format1.json"), "-o", at("p.svg")],
    /series\[0\]\.rssBytes: missing \(a report from before format 2, whose keys were renamed: docs\/report\.md#format-2\)/,
  ],
  ["plot of a file that is not JSON", ["plot", at("notjson.json"), "-o", at("p.svg")], /notjson\.json: not JSON/],
  ["plot of a directory", ["plot", at("adir"), "-o", at("p.svg")], /cannot read report .*adir: it is a directory/],
  ["plot -o in a missing directory", ["plot", at("cmp-null.json"), "-o", at("no/p.svg")], /--output .*does not exist/],
  [
    "plot -o over its input",
    ["plot", at("series-numbers.json"), "-o", at("series-numbers.json")],
    /that is an input of this command, which would be overwritten/,
  ],
  // trace.
  ["trace info of a directory", ["trace", "info", at("adir")], /adir: it is a directory, not a regular file/],
  ["trace info of a FIFO", ["trace", "info", at("fifo")], /fifo: it is a FIFO/],
  ["trace info of a gzip cut in half", ["trace", "info", at("cut.gz")], /cut\.gz.*gzip stream is corrupt or truncated/],
  ["trace info of an xz cut short", ["trace", "info", at("cut.xz")], /cut\.xz.*xz stream is truncated at byte offset 2000/],
  ["trace record -o in a missing directory", ["trace", "record", "-o", at("no/t.mvt"), "--", "true"], /--output .*does not exist/],
];

describe("bad input: exit 2, the place named, nothing written (issue 11)", () => {
  test("there are at least 40 cases", () => expect(cases.length).toBeGreaterThanOrEqual(40));
  for (const [what, args, place] of cases) {
    test(what, async () => {
      const before = listing();
      const t0 = Date.now();
      const r = await runCli(args);
      expect(r.stderr).toMatch(place);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(listing()).toEqual(before);
      expect(Date.now() - t0).toBeLessThan(10_000);
    });
  }

  test("--force runs what the bounds refuse; limits: raises a bound by a stated amount", async () => {
    const raised = at("raised.yaml");
    writeFileSync(raised, `${scenario("- random: {size: 1MiB, accesses: 5000, writeRatio: 0}")}limits: {accesses: 6000}\n`);
    expect((await runCli(["run", raised, "--json"])).code).toBe(0);
    const forced = await runCli(["run", at("limitslow.yaml"), "--force", "--json"]);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout).accesses).toBe(5000);
    rmSync(raised);
  });

  test("a valid trace passes the pre-flight and replays every access", async () => {
    const r = await runCli(["run", at("trace-ok.yaml"), "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).accesses).toBe(600);
  });
});
