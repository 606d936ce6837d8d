// SPDX-License-Identifier: MIT
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  createReadStream,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { EXIT_CODES } from "./errors.js";
import { checkOutputPaths, prepareOutputs, removeStaleTemps } from "./output.js";
import { runCli } from "./run_cli.js";

const dir = mkdtempSync(join(tmpdir(), "memvirt-out-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function scratch(files: Record<string, string>): string {
  const at = mkdtempSync(join(dir, "t-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(at, name), text);
  return at;
}

const scenario = (accesses: number) => `seed: 3
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
          - random: {name: heap, accesses: ${accesses}, writeRatio: 0.3}
`;
const SMALL = scenario(2000);
/** Fails at run time (the host OOM-kills QEMU): a command that exits 2 with it never started the run. */
const OOM = `host: {ram: 64MiB, swap: 0}
vms:
  - name: vm0
    ram: 256MiB
    processes:
      - name: p0
        steps:
          - touch: {size: 128MiB, op: write}
`;
const SWEEP = "scenario: s.yaml\ngrid:\n  mmu: [ept, npt]\n";

const nullOut = { isTTY: false, write: () => {}, error: () => {} };
/** Temporary files of this process (pid-named) left in `d`. */
const tempsIn = (d: string) => readdirSync(d).filter((f) => f.includes(`.memvirt-${process.pid}-`));

describe("output files: one rule for every command", () => {
  test("a symlink output writes its target and stays a symlink; a dangling one creates its target", async () => {
    const d = scratch({ "s.yaml": SMALL, "real.json": "old" });
    symlinkSync("real.json", join(d, "link.json"));
    symlinkSync("new.csv", join(d, "dangling.csv"));
    const r = await runCli(["run", join(d, "s.yaml"), "--json", join(d, "link.json"), "--csv", join(d, "dangling.csv")]);
    expect(r.code).toBe(0);
    expect(lstatSync(join(d, "link.json")).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(join(d, "real.json"), "utf8")).accesses).toBe(2000 + 1024);
    expect(lstatSync(join(d, "dangling.csv")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(d, "new.csv"), "utf8").split("\n")[0]).toMatch(/^label,scenario,seed,vms.name,/);
    expect(readdirSync(d).sort()).toEqual(["dangling.csv", "link.json", "new.csv", "real.json", "s.yaml"]);
  });

  test("a replaced file keeps its permission bits", async () => {
    const d = scratch({ "s.yaml": SMALL, "out.json": "old" });
    execFileSync("chmod", ["640", join(d, "out.json")]);
    expect((await runCli(["run", join(d, "s.yaml"), "--json", join(d, "out.json")])).code).toBe(0);
    expect(statSync(join(d, "out.json")).mode & 0o777).toBe(0o640);
  });

  test("a FIFO output gets the data through its reader and stays a FIFO", async () => {
    const d = scratch({ "s.yaml": SMALL });
    const fifo = join(d, "report.fifo");
    execFileSync("mkfifo", [fifo]);
    const chunks: Buffer[] = [];
    const read = new Promise<string>((resolve, reject) => {
      const s = createReadStream(fifo);
      s.on("data", (c) => chunks.push(c as Buffer));
      s.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      s.on("error", reject);
    });
    const r = await runCli(["run", join(d, "s.yaml"), "--json", fifo]);
    expect(r.code).toBe(0);
    expect(JSON.parse(await read).accesses).toBe(3024);
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(d).sort()).toEqual(["report.fifo", "s.yaml"]);
  });

  test("/dev/null as every output stays a character device; no spool is left in the temp directory", async () => {
    const d = scratch({ "s.yaml": SMALL });
    const r = await runCli(["run", join(d, "s.yaml"), "--json", "/dev/null", "--csv", "/dev/null", "--events", "/dev/null"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("KVM counters");
    expect(statSync("/dev/null").isCharacterDevice()).toBe(true);
    expect(tempsIn(tmpdir())).toEqual([]);
  });

  test("an output that is the command's input is refused with exit 2 and the input is unchanged", async () => {
    const d = scratch({ "x.yaml": SMALL, "sw.yaml": SWEEP, "s.yaml": SMALL });
    linkSync(join(d, "x.yaml"), join(d, "hard.json"));
    symlinkSync("x.yaml", join(d, "soft.json"));
    const cases: [string[], RegExp][] = [
      [["run", join(d, "x.yaml"), "--compare", "mmu=ept,npt", "--json", join(d, "x.yaml")], /^memvirt: --json .*x\.yaml: that is an input/],
      [["run", join(d, "x.yaml"), "--json", join(d, "hard.json")], /^memvirt: --json .*hard\.json: that is .*x\.yaml, an input/],
      [["run", join(d, "x.yaml"), "--csv", join(d, "soft.json")], /^memvirt: --csv .*soft\.json: that is .*x\.yaml, an input/],
      [["run", join(d, "x.yaml"), "--json", join(d, "x.yaml")], /^memvirt: --json .*x\.yaml: that looks like a scenario file/],
      [["sweep", join(d, "sw.yaml"), "-o", join(d, "sw.yaml"), "--workers", "1"], /^memvirt: -o\/--output .*sw\.yaml: that is an input/],
      [["sweep", join(d, "sw.yaml"), "-o", join(d, "s.yaml"), "--workers", "1"], /^memvirt: -o\/--output .*s\.yaml: that is .*an input/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect([r.code, r.stdout], args.join(" ")).toEqual([2, ""]);
      expect(r.stderr).toMatch(message);
    }
    expect(readFileSync(join(d, "x.yaml"), "utf8")).toBe(SMALL);
    expect(readFileSync(join(d, "sw.yaml"), "utf8")).toBe(SWEEP);
    expect(readFileSync(join(d, "s.yaml"), "utf8")).toBe(SMALL);
    expect(readdirSync(d).sort()).toEqual(["hard.json", "s.yaml", "soft.json", "sw.yaml", "x.yaml"]);
  });

  test("- is standard output for --csv and --events too, and for one option at most", async () => {
    const d = scratch({ "s.yaml": SMALL });
    const csv = await runCli(["run", join(d, "s.yaml"), "--csv", "-"]);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split("\n")[0]).toMatch(/^label,scenario,seed,vms.name,/);
    expect(csv.stdout).not.toContain("KVM counters");
    const ev = await runCli(["run", join(d, "s.yaml"), "--events", "-"]);
    expect(ev.code).toBe(0);
    const lines = ev.stdout.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(1000);
    for (const l of lines) expect(typeof JSON.parse(l).kind).toBe("string");
    for (const args of [
      ["--json", "-", "--csv", "-"],
      ["--json", "--events", "-"],
      ["--csv", "-", "--events", "-"],
    ]) {
      const r = await runCli(["run", join(d, "s.yaml"), ...args]);
      expect([r.code, r.stdout]).toEqual([2, ""]);
      expect(r.stderr).toMatch(/both write to standard output \(-\); give one of them a file name/);
    }
    const sweep = scratch({ "s.yaml": SMALL, "sw.yaml": SWEEP });
    const s = await runCli(["sweep", join(sweep, "sw.yaml"), "-o", "-", "--workers", "1"]);
    expect(s.code).toBe(0);
    expect(s.stdout.trimEnd().split("\n")).toHaveLength(3);
    expect(readdirSync(d)).toEqual(["s.yaml"]);
  });

  test("an output that cannot be written is refused before the run starts, and no other output is written", async () => {
    const d = scratch({ "oom.yaml": OOM, "sw.yaml": "scenario: oom.yaml\ngrid:\n  mmu: [ept, npt]\n" });
    mkdirSync(join(d, "adir"));
    const cases: [string[], RegExp][] = [
      [
        ["run", join(d, "oom.yaml"), "--json", join(d, "missing", "x.json")],
        /--json .*: the directory .*missing does not exist; create it/,
      ],
      [
        ["run", join(d, "oom.yaml"), "--events", join(d, "ev.jsonl"), "--csv", join(d, "adir")],
        /--csv .*adir: is a directory; give a file name in it/,
      ],
      [
        ["run", join(d, "oom.yaml"), "--json", join(d, "a.json"), "--compare", "mmu=ept,npt", "--csv", join(d, "nope", "c.csv")],
        /--csv .*c\.csv: the directory .*nope does not exist/,
      ],
      [
        ["sweep", join(d, "sw.yaml"), "-o", join(d, "nope", "rows.csv"), "--workers", "1"],
        /-o\/--output .*: the directory .*nope does not exist/,
      ],
      [["run", join(d, "oom.yaml"), "--json", join(d, "a.json"), "--events", join(d, "a.json")], /--json and --events both write to/],
    ];
    for (const [args, message] of cases) {
      const t0 = Date.now();
      const r = await runCli(args);
      // The run would fail with exit 1 (out of memory) after about two seconds: it never started.
      expect([r.code, r.stdout], args.join(" ")).toEqual([2, ""]);
      expect(r.stderr).toMatch(message);
      expect(Date.now() - t0).toBeLessThan(1000);
    }
    expect(readdirSync(d).sort()).toEqual(["adir", "oom.yaml", "sw.yaml"]);
  });

  test("an output that fails at commit (/dev/full) writes none of the others and leaves no temporary file; exit 1", async () => {
    const d = scratch({ "s.yaml": SMALL });
    const r = await runCli(["run", join(d, "s.yaml"), "--json", join(d, "a.json"), "--csv", "/dev/full"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("memvirt: cannot write --csv /dev/full: no space left on device; no output was written\n");
    expect(readdirSync(d)).toEqual(["s.yaml"]);
    expect(statSync("/dev/full").isCharacterDevice()).toBe(true);
    expect(tempsIn(tmpdir())).toEqual([]);
  });

  test("a failed rename leaves no temporary file", async () => {
    const d = scratch({ "in.txt": "x" });
    const outs = prepareOutputs(
      [
        { option: "--a", path: join(d, "a.txt") },
        { option: "--b", path: join(d, "b.txt") },
      ],
      [join(d, "in.txt")],
      nullOut,
    );
    outs.get("--a")!.write("A");
    outs.get("--b")!.write("B");
    expect(tempsIn(d)).toHaveLength(2);
    // b.txt becomes a non-empty directory after it was checked: the rename over it fails.
    mkdirSync(join(d, "b.txt"));
    writeFileSync(join(d, "b.txt", "keep"), "");
    await expect(outs.commitAll()).rejects.toThrow(/^cannot write --b .*b\.txt: .*; no output was written$/);
    expect(tempsIn(d)).toEqual([]);
  });

  test("checkOutputPaths writes nothing and says where each output goes", () => {
    const d = scratch({ "in.yaml": "a" });
    symlinkSync("t.json", join(d, "l.json"));
    const plan = checkOutputPaths(
      [
        { option: "--json", path: join(d, "l.json") },
        { option: "--csv", path: "-" },
        { option: "--events", path: "/dev/null" },
      ],
      [join(d, "in.yaml")],
    );
    expect(plan.map((p) => [p.option, p.kind, p.target])).toEqual([
      ["--json", "file", join(d, "t.json")],
      ["--csv", "stdout", "-"],
      ["--events", "device", "/dev/null"],
    ]);
    expect(readdirSync(d).sort()).toEqual(["in.yaml", "l.json"]);
  });

  test("a dead process's temporary files are removed by the next run; a live one's are kept", async () => {
    const d = scratch({ "s.yaml": SMALL });
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    const live = spawn("sleep", ["30"]);
    try {
      writeFileSync(join(d, `.out.json.memvirt-${dead}-abc123.tmp`), "partial");
      writeFileSync(join(d, `.out.json.memvirt-${live.pid}-abc123.tmp`), "in use");
      const r = await runCli(["run", join(d, "s.yaml"), "--json", join(d, "out.json")]);
      expect(r.code).toBe(0);
      expect(readdirSync(d).sort()).toEqual([`.out.json.memvirt-${live.pid}-abc123.tmp`, "out.json", "s.yaml"]);
      expect(removeStaleTemps(d)).toEqual([]);
    } finally {
      live.kill();
    }
  });

  test("--help lists every exit code", async () => {
    const r = await runCli(["--help"]);
    for (const e of EXIT_CODES) expect(r.stdout).toContain(`  ${String(e.code).padStart(3)}  ${e.meaning}`);
    expect(EXIT_CODES.map((e) => e.code)).toEqual([0, 1, 2, 70, 130]);
  });
});

describe("interrupted and killed runs (the built CLI)", () => {
  const cli = new URL("../../dist/bin/memvirt.js", import.meta.url).pathname;
  const OUTS = ["out.json", "out.csv", "ev.jsonl"];

  function start(d: string, tmp: string): ChildProcess {
    return spawn(
      process.execPath,
      [cli, "run", join(d, "long.yaml"), "--json", join(d, "out.json"), "--csv", join(d, "out.csv"), "--events", join(d, "ev.jsonl")],
      { env: { ...process.env, TMPDIR: tmp } },
    );
  }

  async function waitFor(cond: () => boolean, what: string): Promise<void> {
    for (const t0 = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 10)))
      if (Date.now() - t0 > 20000) throw new Error(`timed out waiting for ${what}`);
  }

  function exited(p: ChildProcess): Promise<{ code: number | null; signal: string | null; stderr: string }> {
    let stderr = "";
    p.stderr!.on("data", (c) => (stderr += c));
    return new Promise((resolve) => p.on("close", (code, signal) => resolve({ code, signal, stderr })));
  }

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    test(`${signal} during a run: exit 130, one line, no output and no temporary file`, async () => {
      const d = scratch({ "long.yaml": scenario(20_000_000) });
      const tmp = mkdtempSync(join(dir, "tmp-"));
      const p = start(d, tmp);
      const done = exited(p);
      // The temporary files exist once the outputs are prepared, just before the run (about 12 s) starts.
      await waitFor(() => readdirSync(d).some((f) => f.startsWith(".ev.jsonl.")), "the run");
      await new Promise((r) => setTimeout(r, 300));
      p.kill(signal);
      const r = await done;
      expect(r).toEqual({ code: 130, signal: null, stderr: "memvirt: interrupted; no output written\n" });
      expect(readdirSync(d)).toEqual(["long.yaml"]);
      expect(readdirSync(tmp)).toEqual([]);
    });
  }

  test("SIGKILL at random moments never leaves a partial output; the next run removes the leftovers", async () => {
    const d = scratch({ "long.yaml": scenario(20_000_000) });
    const tmp = mkdtempSync(join(dir, "tmp-"));
    // Fixed delays from the start (some before the outputs are prepared), then delays after they are.
    for (const [delay, afterPrepare] of [
      [0, false],
      [400, false],
      [1000, false],
      [0, true],
      [300, true],
    ] as const) {
      const p = start(d, tmp);
      const done = exited(p);
      const before = new Set(readdirSync(d));
      if (afterPrepare) await waitFor(() => readdirSync(d).some((f) => f.endsWith(".tmp") && !before.has(f)), "the outputs");
      await new Promise((r) => setTimeout(r, delay));
      p.kill("SIGKILL");
      expect((await done).signal).toBe("SIGKILL");
      for (const f of OUTS) expect(existsSync(join(d, f)), `${f} after ${delay} ms`).toBe(false);
    }
    expect(readdirSync(d).filter((f) => f.endsWith(".tmp")).length).toBeGreaterThan(0);
    writeFileSync(join(d, "short.yaml"), SMALL);
    const r = spawnSync(process.execPath, [cli, "run", join(d, "short.yaml"), "--json", join(d, "out.json")], {
      encoding: "utf8",
      env: { ...process.env, TMPDIR: tmp },
    });
    expect(r.status).toBe(0);
    expect(readdirSync(d).sort()).toEqual(["long.yaml", "out.json", "short.yaml"]);
  }, 60000);

  test.skipIf(spawnSync("valgrind", ["--version"]).status !== 0)(
    "trace record: SIGTERM kills the traced command and leaves neither the Lackey log nor the trace",
    async () => {
      const d = scratch({});
      const tmp = mkdtempSync(join(dir, "tmp-"));
      const p = spawn(process.execPath, [cli, "trace", "record", "-o", join(d, "t.mvt.gz"), "--", "sleep", "30"], {
        env: { ...process.env, TMPDIR: tmp },
      });
      const done = exited(p);
      await waitFor(() => readdirSync(tmp).some((f) => f.startsWith("memvirt-trace-")), "the Lackey log directory");
      p.kill("SIGTERM");
      const r = await done;
      expect([r.code, r.stderr]).toEqual([130, "memvirt: interrupted; no output written\n"]);
      expect(readdirSync(tmp)).toEqual([]);
      expect(readdirSync(d)).toEqual([]);
      expect(spawnSync("pgrep", ["-f", `log-file=${tmp}`]).status).toBe(1);
    },
    30000,
  );
});
