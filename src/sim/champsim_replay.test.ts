// SPDX-License-Identifier: MIT
// A ChampSim trace replayed as a guest process: every access of every record reaches the guest.
import { readFileSync } from "node:fs";
import { gunzipSync } from "fflate";
import { describe, expect, test } from "vitest";
import { BufferSource } from "../workload/trace.js";
import { Engine, RunError } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

describe("ChampSim trace replay", () => {
  test("examples/traces/true.champsim.gz runs as a guest process under EPT, every value read back", () => {
    const bytes = readFileSync(new URL("../../examples/traces/true.champsim.gz", import.meta.url));
    const s = loadScenario(
      "host: {ram: 256MiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: 128MiB\n    processes:\n      - name: bin-true\n        steps:\n          - trace: {file: true.champsim.gz}\n",
      "t.yaml",
    );
    const r = new Engine(s, { openFile: () => new BufferSource(bytes) }).run();
    // 20,000 fetches + 3,783 reads + 190 writes (src/workload/champsim.test.ts).
    expect(r.accesses).toBe(23_973);
    expect([r.check.dataErrors, r.check.invariantViolations]).toEqual([0, 0]);
  });
});

describe("ChampSim trace replay, compressed", () => {
  test("the same trace plain, .gz and .xz gives the same report, field for field", () => {
    const gz = readFileSync(new URL("../../examples/traces/true.champsim.gz", import.meta.url));
    const xz = readFileSync(new URL("../../examples/traces/true.champsim.xz", import.meta.url));
    const report = (bytes: Uint8Array, file: string) =>
      new Engine(
        loadScenario(
          `host: {ram: 256MiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: 128MiB\n    processes:\n      - name: bin-true\n        steps:\n          - trace: {file: ${file}}\n`,
          "t.yaml",
        ),
        { openFile: () => new BufferSource(bytes) },
      ).run();
    const plain = report(gunzipSync(gz), "true.champsim");
    expect(plain.accesses).toBe(23_973);
    expect(report(gz, "true.champsim.gz")).toEqual(plain);
    expect(report(xz, "true.champsim.xz")).toEqual(plain);
  });

  test("a cut .xz stops the run with its byte offset (the browser's worker runs without the CLI's check first)", () => {
    const xz = readFileSync(new URL("../../examples/traces/true.champsim.xz", import.meta.url));
    const s = loadScenario(
      "host: {ram: 256MiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: 128MiB\n    processes:\n      - name: bin-true\n        steps:\n          - trace: {file: true.champsim.xz}\n",
      "t.yaml",
    );
    const run = () => new Engine(s, { openFile: () => new BufferSource(xz.subarray(0, 3000)) }).run();
    expect(run).toThrow(RunError); // the worker posts it as "run failed: ..."
    expect(run).toThrow(
      "vm0/bin-true: trace true.champsim.xz: the xz stream is truncated at byte offset 3000: the file ends inside an LZMA chunk (it was cut short; copy or download it again, xz -t checks it)",
    );
  });
});
