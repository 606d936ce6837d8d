// SPDX-License-Identifier: MIT
// `npm run bench`: throughput of the hot paths. `--json` prints machine-readable results;
// `--check` exits 1 if a figure falls below its goal (bench/goals.json).
import { readFileSync } from "node:fs";
import { Bench } from "tinybench";
import { PAGE_SIZE } from "../dist/index.js";
import { ACC_USER, XLATE_OK } from "../dist/index.js";
import { ScratchRange } from "../dist/index.js";
import { Engine } from "../dist/sim/engine.js";
import { loadScenario } from "../dist/sim/scenario_load.js";

const json = process.argv.includes("--json");
const check = process.argv.includes("--check");
const BATCH = 1 << 20;
const GIB = 2 ** 30;

/** A seeded xorshift32, so every run walks the same addresses. */
function addresses(base: number, pages: number, n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = base + (x % pages) * PAGE_SIZE + ((x >>> 20) & 0x1f8);
  }
  return out;
}

function runAll(r: ScratchRange, addrs: Float64Array): void {
  const mmu = r.mmu;
  for (let i = 0; i < addrs.length; i++) {
    if (mmu.access(addrs[i]!, ACC_USER) !== XLATE_OK) throw new Error(`translation failed at ${addrs[i]}`);
  }
}

const cases: { name: string; goal?: string; setup: () => { r: ScratchRange; addrs: Float64Array } }[] = [
  {
    name: "TLB-hit translations (EPT, 64 hot pages)",
    goal: "tlbHit",
    setup: () => {
      const r = new ScratchRange("ept", 64 * PAGE_SIZE);
      const addrs = addresses(r.gvaBase, 64, BATCH, 1);
      runAll(r, addrs.subarray(0, 4096));
      return { r, addrs };
    },
  },
  {
    name: "cold 2D walks (EPT 4+4, 4 KiB, 1 GiB footprint, TLB and caches off)",
    goal: "cold2d",
    setup: () => {
      const r = new ScratchRange("ept", GIB, { tlb: null, psc: null, nestedTlb: null, nestedPsc: null });
      return { r, addrs: addresses(r.gvaBase, r.pages, BATCH, 2) };
    },
  },
  {
    name: "warm 2D walks (EPT 4+4, 4 KiB, 1 GiB footprint, TLB + paging-structure caches + nested TLB)",
    goal: "warm2d",
    setup: () => {
      const r = new ScratchRange("ept", GIB);
      const addrs = addresses(r.gvaBase, r.pages, BATCH, 3);
      runAll(r, addrs);
      return { r, addrs };
    },
  },
  {
    name: "native 1D walks (4 levels, 1 GiB footprint, TLB and caches off)",
    setup: () => {
      const r = new ScratchRange("native", GIB, { tlb: null, psc: null });
      return { r, addrs: addresses(r.gvaBase, r.pages, BATCH, 4) };
    },
  },
];

const goals = JSON.parse(readFileSync(new URL("./goals.json", import.meta.url), "utf8")) as Record<string, number>;
const results: { name: string; perSecond: number; goal: number | null; ok: boolean }[] = [];
for (const c of cases) {
  const { r, addrs } = c.setup();
  const bench = new Bench({ time: 1500, warmupTime: 300 });
  bench.add(c.name, () => runAll(r, addrs));
  await bench.run();
  const t = bench.tasks[0]!.result!;
  const meanMs = "latency" in t ? (t as { latency: { mean: number } }).latency.mean : (t as unknown as { mean: number }).mean;
  const perSecond = BATCH / (meanMs / 1000);
  const goal = c.goal ? (goals[c.goal] ?? null) : null;
  results.push({ name: c.name, perSecond, goal, ok: goal === null || perSecond >= goal });
}

// End to end: guest accesses through the whole stack (guest kernel, EPT, KVM, host), with the
// native twin in lockstep, on a working set that stays resident after its first touches.
{
  const scenario = loadScenario(
    "host: {ram: 1GiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: 512MiB\n    processes:\n      - name: p0\n        steps:\n          - mmap: {name: heap, size: 16MiB}\n          - random: {name: heap, accesses: 3_000_000, writeRatio: 0.3}\n",
    "bench.yaml",
  );
  const t0 = performance.now();
  const r = new Engine(scenario, { sampleEvery: 0 }).run();
  const perSecond = r.accesses / ((performance.now() - t0) / 1000);
  results.push({ name: "end-to-end guest accesses (EPT VM, 16 MiB working set, native twin on)", perSecond, goal: null, ok: true });
}

if (json) {
  console.log(JSON.stringify({ node: process.version, batch: BATCH, results }, null, 2));
} else {
  for (const r of results) {
    const goal = r.goal === null ? "" : `  (goal ${(r.goal / 1e6).toFixed(0)} M/s: ${r.ok ? "met" : "MISSED"})`;
    console.log(`${(r.perSecond / 1e6).toFixed(1).padStart(7)} M/s  ${r.name}${goal}`);
  }
}
if (check && results.some((r) => !r.ok)) process.exitCode = 1;
