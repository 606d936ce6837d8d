// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { runCli } from "./run_cli.js";

describe("memvirt translate", () => {
  test("--paging ept --levels 4 --cold --json: 25 = 4 + 20 + 1", async () => {
    const r = await runCli(["translate", "--paging", "ept", "--levels", "4", "--cold", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.references).toEqual({ total: 25, guestTable: 4, nestedTable: 20, data: 1 });
    expect(j.steps).toHaveLength(25);
    expect(j.steps[0]).toMatchObject({ kind: "nested-table", table: "EPT PML4E", translating: "gPML4" });
  });

  test("--levels 5: 36 = 5 + 30 + 1; native: 5 = 4 + 0 + 1; --warm: 1", async () => {
    const five = JSON.parse((await runCli(["translate", "--paging", "ept", "--levels", "5", "--json"])).stdout);
    expect(five.references).toEqual({ total: 36, guestTable: 5, nestedTable: 30, data: 1 });
    const native = JSON.parse((await runCli(["translate", "--paging", "native", "--levels", "4", "--json"])).stdout);
    expect(native.references).toEqual({ total: 5, guestTable: 4, nestedTable: 0, data: 1 });
    const warm = JSON.parse((await runCli(["translate", "--warm", "--json"])).stdout);
    expect(warm.references).toEqual({ total: 1, guestTable: 0, nestedTable: 0, data: 1 });
  });

  test("the text report ends with the totals", async () => {
    const r = await runCli(["translate"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("references: 25 = 4 guest-table + 20 nested-table + 1 data");
    expect(r.stdout.includes("\u001b[")).toBe(false); // no colour when not a TTY
  });

  test("a kernel (upper-half) address is accepted in canonical form", async () => {
    const r = await runCli(["translate", "--gva", "0xffff888000001000", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).gva).toBe("0xffff888000001000");
  });

  const bad: [string[], RegExp][] = [
    [["translate", "--gva", "0x7f1234567003"], /not 8-byte aligned/],
    [["translate", "--gva", "0x0000800000000000"], /not canonical for 4-level paging/],
    [["translate", "--gva", "banana"], /not an address/],
    [["translate", "--levels", "3"], /Allowed choices are 4, 5/],
    [["translate", "--pagin", "ept"], /unknown option '--pagin'[\s\S]*Did you mean --paging\?/],
    [["translate", "--cold", "--warm"], /exclude each other/],
    [["tranlsate"], /unknown command 'tranlsate'[\s\S]*Did you mean translate\?/],
  ];
  for (const [args, msg] of bad) {
    test(`bad input ${args.join(" ")} exits 2 with a clear message`, async () => {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
      expect(r.stdout).toBe("");
    });
  }
});
