// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import type { SimEvent } from "../hw/events.js";
import { runCli } from "./run_cli.js";

const EXAMPLE = new URL("../../examples/fault-in.yaml", import.meta.url).pathname;

describe("run --events filters", async () => {
  const all = (await runCli(["run", EXAMPLE, "--events", "-"])).stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as SimEvent);

  test("--events-kinds and --events-range keep exactly the events of the whole stream that match", async () => {
    const r = await runCli(["run", EXAMPLE, "--events", "-", "--events-kinds", "host.fault,kvm.*", "--events-range", "0x100000-0x200000"]);
    expect(r.code).toBe(0);
    const got = r.stdout.trimEnd().split("\n");
    const inRange = (e: SimEvent) =>
      ["hva", "gva", "gpa", "start"].some((f) => typeof e[f] === "number" && (e[f] as number) >= 0x100000 && (e[f] as number) < 0x200000);
    const want = all.filter((e) => (e.kind === "host.fault" || e.kind.startsWith("kvm.")) && inRange(e));
    expect(want.length).toBeGreaterThan(0);
    expect(got).toEqual(want.map((e) => JSON.stringify(e)));
  });

  test("--events-first 7 --events-format text: the first 7 events, addresses in hex", async () => {
    const r = await runCli(["run", EXAMPLE, "--events", "-", "--events-first", "7", "--events-format", "text"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(7);
    expect(lines.map((l) => l.split(" ")[1])).toEqual(all.slice(0, 7).map((e) => e.kind));
    const exit = lines.find((l) => l.includes(" kvm.exit "))!;
    expect(exit).toMatch(/ gpa=0x[0-9a-f]+ /);
  });

  test("bad values: exit 2, one line naming the option and the fix, no output", async () => {
    for (const [args, words] of [
      [["--events-kinds", "kvm.exti"], 'did you mean "kvm.exit"'],
      [["--events-range", "0x200-0x100"], "is empty"],
      [["--events-page", "gva:0x1000"], "gpa:ADDR or hva:ADDR"],
      [["--events-first", "0"], "not a count"],
      [["--events-format", "xml"], "jsonl"],
    ] as const) {
      const r = await runCli(["run", EXAMPLE, "--events", "-", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.toLowerCase()).toContain(words.toLowerCase());
    }
    const r = await runCli(["run", EXAMPLE, "--events-first", "3"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give --events <file>");
  });
}, 120_000);
