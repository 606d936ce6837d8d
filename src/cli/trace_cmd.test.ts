// SPDX-License-Identifier: MIT
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

const fixture = new URL("../../test/fixtures/true.lackey.gz", import.meta.url).pathname;
const sortTrace = new URL("../../examples/traces/sort.mvt.gz", import.meta.url).pathname;

describe("memvirt trace", () => {
  test("info on a real Lackey log and on a memvirt trace", async () => {
    const a = await runCli(["trace", "info", fixture, "--json"]);
    expect(a.code).toBe(0);
    const s = JSON.parse(a.stdout);
    expect(s).toMatchObject({ format: "lackey", accesses: 167418 });
    expect(s.reads + s.writes).toBe(167418);
    const b = await runCli(["trace", "info", sortTrace]);
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/memvirt trace/);
    expect(b.stdout).toMatch(/1,218,598/);
  });

  test("a garbled or truncated trace exits 2 with the place", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mvt-"));
    const cut = join(dir, "cut.mvt");
    const whole = spawnSync("gzip", ["-dc", sortTrace]).stdout as Buffer;
    writeFileSync(cut, whole.subarray(0, 1001));
    const r = await runCli(["trace", "info", cut]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/truncated record at byte offset \d+|byte offset \d+/);
    const bad = join(dir, "bad.lackey");
    writeFileSync(bad, "I  0400,3\n L zzz,8\n");
    const r2 = await runCli(["trace", "info", bad]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/bad\.lackey:2: bad address/);
    const r3 = await runCli(["trace", "info", join(dir, "none.mvt")]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/no such file/);
  });

  test.skipIf(spawnSync("valgrind", ["--version"]).status !== 0)(
    "record runs a command under Lackey and writes a trace that info reads",
    async () => {
      const out = join(mkdtempSync(join(tmpdir(), "mvt-")), "true.mvt.gz");
      const r = await runCli(["trace", "record", "-o", out, "--", "/bin/true"]);
      expect(r.code).toBe(0);
      expect(existsSync(out)).toBe(true);
      const n = Number(/recorded ([\d,]+) accesses/.exec(r.stdout)![1]!.replaceAll(",", ""));
      expect(n).toBeGreaterThan(100_000);
      const info = JSON.parse((await runCli(["trace", "info", out, "--json"])).stdout);
      expect(info).toMatchObject({ format: "mvt", accesses: n });
      expect(readFileSync(out).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    },
  );
});
