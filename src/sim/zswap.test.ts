// SPDX-License-Identifier: MIT
// host.zswap end to end (issue 15): a VM bigger than the host swaps through zswap; with no
// pool limit hit nothing reaches the device, the compression and decompression show in the
// cost breakdown at their per-page cost, and every value reads back (checker on).
import { describe, expect, test } from "vitest";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

function run(zswap: string) {
  const yaml = `
seed: 3
host: {ram: 64MiB, swap: 256MiB${zswap}}
vms:
  - name: vm0
    ram: 128MiB
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 80MiB}
          - touch: {name: heap, op: write}
          - random: {name: heap, accesses: 20000, writeRatio: 0.2}
`;
  return new Engine(loadScenario(yaml, "zswap.yaml")).run();
}

describe("host.zswap in a run", () => {
  test("maxPoolPercent 100: pswpout 0, zswpout = pages reclaimed, hits priced as decompression, no value lost", () => {
    const r = run(", zswap: {maxPoolPercent: 100}");
    const v = r.host.vmstat;
    const z = r.host.zswap!;
    const reclaimed = v.pgsteal_kswapd! + v.pgsteal_direct!;
    expect(reclaimed).toBeGreaterThan(1000);
    expect(v.pswpout).toBe(0);
    expect(v.pswpin).toBe(0);
    // The guest's own never-written frames are zero-filled: they go to the zeromap.
    expect(z.zswpout! + z.swpout_zero!).toBe(reclaimed);
    expect(z.zswpin! + z.swpin_zero!).toBe(v.pgmajfault);
    expect(r.cost.counts.zswap_lz4_compress).toBe(z.zswpout);
    expect(r.cost.breakdown.zswap_lz4_compress).toBe(z.zswpout! * 27100);
    expect(r.cost.breakdown.zswap_lz4_decompress).toBe(z.zswpin! * 4460);
    expect(r.cost.counts.swap_in).toBe(0);
    expect(r.vms[0]!.cost.counts.swap_in).toBe(0);
    expect(r.vms[0]!.cost.counts.zswap_lz4_decompress).toBe(z.zswpin);
    expect(r.check.dataErrors + r.check.invariantViolations).toBe(0);
  });

  test("a 10% pool on 64 MiB: the excess is written to the device (limit rejects + writeback)", () => {
    const r = run(", zswap: {compressor: zstd, maxPoolPercent: 10}");
    const v = r.host.vmstat;
    const z = r.host.zswap!;
    expect(z.pool_limit_hit).toBeGreaterThan(0);
    expect(v.pswpout).toBe(z.zswap_pool_limit_rejects! + z.written_back_pages!);
    expect(z.pool_total_size).toBeLessThanOrEqual((Math.floor((16383 * 10) / 100) + 1) * 4096);
    expect(r.cost.counts.zswap_zstd_decompress).toBe(z.zswpin! + z.zswpwb!);
    expect(r.check.dataErrors + r.check.invariantViolations).toBe(0);
  });

  test("zswap without a swap device, or a pool above 100%, is an error naming the key and the fix", () => {
    const bad = (host: string) => () =>
      loadScenario(`host: {ram: 64MiB, ${host}}\nvms: [{name: vm0, ram: 64MiB, processes: [{name: p0, steps: []}]}]\n`, "z.yaml");
    expect(bad("zswap: {}")).toThrow(/host\.zswap: zswap sits in front of a swap device; set host\.swap/);
    expect(bad("swap: 64MiB, zswap: {maxPoolPercent: 150}")).toThrow(/host\.zswap\.maxPoolPercent: 150 is above 100/);
  });

  test("without host.zswap the report has no zswap section and no zswap cost", () => {
    const r = run("");
    expect(r.host.zswap).toBeUndefined();
    expect(r.cost.counts.zswap_lz4_compress).toBeUndefined();
    expect(r.host.vmstat.pswpout).toBeGreaterThan(1000);
  });
});
