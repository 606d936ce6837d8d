// SPDX-License-Identifier: MIT
// `memvirt plot`: a report with migrations gets a third panel, the dirty memory left after each
// round against the seconds since the migration started; one without has only the two.
import { describe, expect, test } from "vitest";
import { plotSpec, runsOf } from "./plot_cmd.js";

const point = { accesses: 0, rssBytes: 0, freeBytes: 0, swapUsedBytes: 0, faults: 0, exits: 0, swapIns: 0, swapOuts: 0 };
const rounds = [
  { seconds: 0.25, remainingBytes: 2 * 2 ** 20 },
  { seconds: 0.5, remainingBytes: 2 ** 19 },
  { seconds: 0.125, remainingBytes: 0 },
];

type Spec = { data: { values: { x: number; y: number; s: string; panel: number }[] }[]; marks: { title: { text: string } }[] };

describe("plot: the migration panel", () => {
  test("one point per round: x the rounds' seconds summed, y the bytes left in MiB", () => {
    const runs = runsOf({ series: [point], migrations: [{ vm: "vm0", iterations: rounds }] }, "r.json");
    const spec = plotSpec(runs, "t") as unknown as Spec;
    expect(spec.marks.map((g) => g.title.text)).toEqual([
      "Memory",
      "Faults, exits and swap traffic",
      "Migration: dirty memory left after each round",
    ]);
    const pts = spec.data[0]!.values.filter((v) => v.panel === 2);
    expect(pts).toEqual([
      { x: 0.25, y: 2, s: "vm0 remaining", panel: 2 },
      { x: 0.75, y: 0.5, s: "vm0 remaining", panel: 2 },
      { x: 0.875, y: 0, s: "vm0 remaining", panel: 2 },
    ]);
  });

  test("no migrations: two panels; a malformed migrations[] is named", () => {
    const spec = plotSpec(runsOf({ series: [point] }, "r.json"), "t") as unknown as Spec;
    expect(spec.marks.length).toBe(2);
    expect(() =>
      runsOf({ series: [point], migrations: [{ vm: "vm0", iterations: [{ seconds: "x", remainingBytes: 0 }] }] }, "r.json"),
    ).toThrow(/r\.json: migrations\[0\]\.iterations\[0\]\.seconds: "x" is not a number/);
  });
});
