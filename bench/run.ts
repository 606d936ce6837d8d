// SPDX-License-Identifier: MIT
// `npm run bench`: the model's speed and memory, timed by CPU (user + sys), with a C reference
// of the same walks compiled and run in the same job so speed is given as a ratio that a busy
// machine disturbs far less than a wall-clock figure.
//
//   npm run --silent bench -- [--json] [--full] [--case name[,name...]] [--check] [--samples n]
//
// --json prints one JSON document on stdout and nothing else; --full adds the long cases
// (10^8 accesses, 16 GiB first touch, 16 VMs x 4 GiB: several minutes); --case runs only the
// named cases (see --list); --check exits 1 if a goal is missed (bench/goals.json).
// Progress goes to stderr, and only when it is a terminal.
//
// In-process cases (walks, TLB hits) run the model's MMU, the wasm core, from dist/ on a
// ScratchRange, a batch per pass (<case>-js: the JS reference Mmu, a call per access); the
// end-to-end, start-up, memory and sweep cases run `node dist/bin/memvirt.js` as a child that
// reports its own whole-process CPU time and peak RSS (bench/lib/rusage_hook.mjs).
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ACC_USER, XlateBatch, type HwStats, PAGE_SIZE, ScratchRange, WalkLog, WasmMmu, XLATE_OK } from "../dist/index.js";

const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const optVal = (f: string): string | undefined => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : undefined;
};
const json = flag("--json");
const full = flag("--full");
const check = flag("--check");
const caseFilter = optVal("--case")?.split(",").filter(Boolean) ?? null;
const SAMPLES = Number(optVal("--samples") ?? 5);
if (!Number.isInteger(SAMPLES) || SAMPLES < 1) throw new Error(`--samples ${optVal("--samples")}: a whole number >= 1`);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "dist/bin/memvirt.js");
const HOOK = join(ROOT, "bench/lib/rusage_hook.mjs");
const TMP = mkdtempSync(join(tmpdir(), "memvirt-bench-"));
process.on("exit", () => rmSync(TMP, { recursive: true, force: true }));

const GIB = 2 ** 30;
/** Accesses per batch of the in-process cases (the address stream is precomputed, as in C). */
const BATCH = 1 << 20;
/** Target CPU seconds of one sample; a batch is repeated to reach it. */
const SAMPLE_SECONDS = 0.25;
/** Accesses of a fresh run whose reference addresses are hashed and compared with C's. */
const LOG_WALKS = 2048;

// A line per phase on stderr, terminal or not (the report goes to stdout); MEMVIRT_PROGRESS=off silences it.
const progress = (msg: string) => {
  if (process.env.MEMVIRT_PROGRESS !== "off") process.stderr.write(`bench: ${msg}\n`);
};

// ------------------------------------------------------------------ results

interface Goal {
  /** Key in bench/goals.json. */
  id: string;
  text: string;
  measured: number;
  target: number;
  /** "min": measured >= target; "max": measured <= target. */
  kind: "min" | "max";
  met: boolean;
}
interface CaseResult {
  name: string;
  description: string;
  /** The case's figures, by name (rates per CPU-second, CPU seconds, bytes). */
  figures: Record<string, number | string | null>;
  goals: Goal[];
  /** Agreement checks between the model and the C reference (or other consistency checks). */
  agree: { what: string; js: number | string; c: number | string; ok: boolean; labels?: [string, string] }[];
  notes: string[];
}

const goalTargets = JSON.parse(readFileSync(new URL("./goals.json", import.meta.url), "utf8")) as Record<
  string,
  { target: number; kind: "min" | "max"; text: string }
>;
function goal(id: string, measured: number): Goal {
  const g = goalTargets[id];
  if (!g) throw new Error(`bench/goals.json has no goal ${id}`);
  const met = g.kind === "min" ? measured >= g.target : measured <= g.target;
  return { id, text: g.text, measured, target: g.target, kind: g.kind, met };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const cpuSeconds = (d: NodeJS.CpuUsage) => (d.user + d.system) / 1e6;

// ------------------------------------------------------------------ the C reference

let cBinary: string | null | undefined;
let cNote = "";
/** Compiles bench/ref/walk.c with the system's cc once; null (with a note) if there is none or it fails. */
function cReference(): string | null {
  if (cBinary !== undefined) return cBinary;
  const out = join(TMP, "walk");
  const r = spawnSync("cc", ["-O2", "-o", out, join(ROOT, "bench/ref/walk.c")], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    cNote = r.error ? "no C compiler (cc) on this machine: C reference skipped" : `cc failed: C reference skipped\n${r.stderr}`;
    cBinary = null;
  } else {
    cBinary = out;
  }
  return cBinary;
}

/**
 * walk.c running as a child that takes one sample per line written to its stdin, so the model's
 * and C's samples alternate and both see the same load on a shared machine.
 */
class CRef {
  private readonly lines: AsyncIterator<string>;
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly head: { passes: number; batch: number; refHash: number },
    lines: AsyncIterator<string>,
  ) {
    this.lines = lines;
  }

  static async start(mode: string, bytes: number, seed: number): Promise<CRef | null> {
    const bin = cReference();
    if (!bin) return null;
    const args = [mode, String(bytes), String(seed), String(BATCH), String(SAMPLE_SECONDS), "0", String(LOG_WALKS)];
    const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`C reference ${mode} failed: ${stderr}`);
    return new CRef(child, JSON.parse(first.value), lines);
  }

  async sample(): Promise<{ cpuSeconds: number; refsPerAccess: number; hpaSum: number }> {
    this.child.stdin.write("s\n");
    const l = await this.lines.next();
    if (l.done) throw new Error("C reference ended early");
    return JSON.parse(l.value);
  }

  stop(): void {
    this.child.stdin.end();
  }
}

// ------------------------------------------------------------------ one CPU for the model and C

/**
 * Pins this process's main thread to the CPU it is on, so a walk case's model samples and the C
 * child it spawns (which inherits the mask) run on the same CPU: on a shared VM one vCPU can run
 * at half speed for seconds while the other does not (seen here: the same walk at 1.9 M/s pinned
 * to one and 4.3 M/s on the other), and a model on one and C on the other made the ratio halve.
 * V8's helper threads stay free. Returns the CPU and how to undo it, or null without taskset
 * (Linux's util-linux) or /proc.
 */
function pinMainThread(): { cpu: number; undo: () => void } | null {
  if (process.platform !== "linux") return null;
  let stat: string;
  try {
    stat = readFileSync("/proc/thread-self/stat", "utf8");
  } catch {
    return null;
  }
  // Field 39, `processor`: the CPU the thread last ran on (fields counted after the command's closing parenthesis).
  const cpu = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[36]);
  const pid = String(process.pid);
  const before = spawnSync("taskset", ["-p", pid], { encoding: "utf8" });
  const mask = before.stdout?.match(/:\s*([0-9a-f]+)\s*$/)?.[1];
  if (before.status !== 0 || mask === undefined || !Number.isInteger(cpu)) return null;
  if (spawnSync("taskset", ["-p", "-c", String(cpu), pid]).status !== 0) return null;
  // Unpinned again after the case: the command-line cases' children (the sweep's lanes) inherit the mask.
  const undo = () => {
    if (spawnSync("taskset", ["-p", mask, pid]).status !== 0) throw new Error(`bench: could not restore this process's CPU mask ${mask}`);
  };
  return { cpu, undo };
}

// ------------------------------------------------------------------ in-process walk cases

/** bench/ref/walk.c does the same: a seeded xorshift32, so every run walks the same addresses. */
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

/** A case's MMU and address stream: the JS Mmu called per access, or the wasm core handed the whole batch. */
interface Driver {
  stats: HwStats;
  /** One pass: every access translated, the sum of the hpas returned (C sums them too, so neither drops work). */
  pass(): number;
  /** The hash walk.c computes: every reference's hpa, in order, over a fresh range's first accesses. */
  refHash(): number;
}

function hashSteps(log: WalkLog): number {
  let h = 0;
  for (const s of log.steps) h = (Math.imul(h, 31) + ((s.hpa / 8) >>> 0)) >>> 0;
  return h;
}

function jsDriver(r: ScratchRange, addrs: Float64Array): Driver {
  const mmu = r.mmu;
  return {
    stats: mmu.stats,
    pass: () => {
      let sum = 0;
      for (let i = 0; i < addrs.length; i++) {
        if (mmu.access(addrs[i]!, ACC_USER) !== XLATE_OK) throw new Error(`translation failed at ${addrs[i]}`);
        sum += mmu.hpa;
      }
      return sum;
    },
    refHash: () => {
      const log = new WalkLog();
      mmu.log = log;
      for (let i = 0; i < LOG_WALKS; i++) mmu.access(addrs[i]!, ACC_USER);
      mmu.log = null;
      return hashSteps(log);
    },
  };
}

/** The wasm core on the range's tables: a batch of the whole stream in wasm memory, one call per pass. */
function wasmDriver(r: ScratchRange, addrs: Float64Array): Driver {
  const mmu = new WasmMmu(r.mem, r.mmu.config);
  if (mmu.nested) mmu.setNestedContext(r.mmu.vpid, r.mmu.nestedRoot);
  mmu.loadCr3(r.mmu.cr3Frame);
  const batch = new XlateBatch(r.mem, addrs.length);
  batch.gva.set(addrs);
  batch.acc.fill(ACC_USER);
  return {
    stats: mmu.stats,
    pass: () => {
      const done = mmu.accessBatch(batch, 0, addrs.length);
      if (done !== addrs.length) throw new Error(`translation failed at ${addrs[done]}`);
      const hpa = batch.hpa;
      let sum = 0;
      for (let i = 0; i < hpa.length; i++) sum += hpa[i]!;
      return sum;
    },
    refHash: () => {
      const log = new WalkLog();
      mmu.log = log;
      mmu.accessBatch(batch, 0, LOG_WALKS);
      mmu.log = null;
      return hashSteps(log);
    },
  };
}

interface WalkCase {
  name: string;
  description: string;
  engine: "js" | "wasm";
  /** Mode of walk.c, or null (no C counterpart). */
  cMode: string | null;
  make: () => ScratchRange;
  bytes: number;
  seed: number;
  goals: (rate: number, ratio: number | null) => Goal[];
}

function driver(w: WalkCase): Driver {
  const r = w.make();
  const addrs = addresses(r.gvaBase, r.pages, BATCH, w.seed);
  return w.engine === "js" ? jsDriver(r, addrs) : wasmDriver(r, addrs);
}

async function walkCase(w: WalkCase): Promise<CaseResult> {
  const pin = pinMainThread();
  try {
    const res = await walkCaseOn(w);
    if (pin !== null) res.figures.cpu = pin.cpu;
    else if (w.cMode !== null)
      res.notes.push("the model and C were not pinned to one CPU (no taskset): their ratio may mix two CPUs' speeds");
    return res;
  } finally {
    pin?.undo();
  }
}

async function walkCaseOn(w: WalkCase): Promise<CaseResult> {
  const hash = driver(w).refHash();
  const r = driver(w);
  r.pass(); // warm-up: A bits set, TLB filled, code optimized
  let t = process.cpuUsage();
  let hpaSum = r.pass();
  const one = cpuSeconds(process.cpuUsage(t));
  const passes = Math.floor(SAMPLE_SECONDS / Math.max(one, 1e-6)) + 1;
  const c = w.cMode ? await CRef.start(w.cMode, w.bytes, w.seed) : null;
  const jsRates: number[] = [];
  const cRates: number[] = [];
  const ratios: number[] = [];
  let cLast = { cpuSeconds: 0, refsPerAccess: 0, hpaSum: 0 };
  const s = r.stats;
  const before = s.guestTableReads + s.nestedTableReads + s.walkDataAccesses + s.tlbHits;
  try {
    for (let k = 0; k < SAMPLES; k++) {
      t = process.cpuUsage();
      for (let p = 0; p < passes; p++) hpaSum = r.pass();
      jsRates.push((passes * BATCH) / cpuSeconds(process.cpuUsage(t)));
      if (c) {
        cLast = await c.sample();
        cRates.push((c.head.passes * c.head.batch) / cLast.cpuSeconds);
        ratios.push(jsRates[k]! / cRates[k]!);
      }
    }
  } finally {
    c?.stop();
  }
  const refs = (s.guestTableReads + s.nestedTableReads + s.walkDataAccesses + s.tlbHits - before) / (SAMPLES * passes * BATCH);
  const spread = (xs: number[]) => (Math.max(...xs) - Math.min(...xs)) / median(xs);
  const rate = median(jsRates);
  const res: CaseResult = {
    name: w.name,
    description: w.description,
    figures: { jsPerCpuSecond: rate, jsSpread: spread(jsRates), refsPerAccess: refs },
    goals: [],
    agree: [],
    notes: [],
  };
  let ratio: number | null = null;
  if (c) {
    // The ratio is the median of each pair's ratio (a model sample and the C sample right after it).
    ratio = median(ratios);
    res.figures.cPerCpuSecond = median(cRates);
    res.figures.cSpread = spread(cRates);
    res.figures.ratioToC = ratio;
    res.figures.ratioRange = `${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}`;
    res.agree.push(
      { what: "memory references per access", js: refs, c: cLast.refsPerAccess, ok: Math.abs(refs - cLast.refsPerAccess) < 1e-9 },
      { what: "sum of the hpa of every access in a pass", js: hpaSum, c: cLast.hpaSum, ok: hpaSum === cLast.hpaSum },
      {
        what: `hash of every reference's hpa over the first ${LOG_WALKS} accesses`,
        js: hash,
        c: c.head.refHash,
        ok: hash === c.head.refHash,
      },
    );
  } else if (w.cMode) {
    res.notes.push(cNote);
  }
  res.goals = w.goals(rate, ratio);
  return res;
}

const noCaches = { psc: null, nestedTlb: null, nestedPsc: null } as const;
const baseWalkCases: Omit<WalkCase, "engine">[] = [
  {
    name: "cold2d",
    description: "cold 2D walks: EPT 4+4, 4 KiB pages, 1 GiB footprint, TLB and all caches off (24 table reads + data)",
    cMode: "cold2d",
    make: () => new ScratchRange("ept", GIB, { tlb: null, ...noCaches }),
    bytes: GIB,
    seed: 2,
    goals: (_rate, ratio) => (ratio === null ? [] : [goal("cold2dRatio", ratio)]),
  },
  {
    name: "tlbhit",
    description: "TLB-hit translations: 64 hot pages under EPT, Golden Cove STLB (128 sets x 16 ways, LRU)",
    cMode: "tlbhit",
    // Paging-structure caches and the nested TLB off: the few misses then walk exactly as walk.c does.
    make: () => new ScratchRange("ept", 64 * PAGE_SIZE, noCaches),
    bytes: 64 * PAGE_SIZE,
    seed: 1,
    goals: (rate, ratio) => [...(ratio === null ? [] : [goal("tlbHitRatio", ratio)]), goal("tlbHitRate", rate)],
  },
  {
    name: "tlbset",
    description:
      "TLB hits over 1024 pages (the hit-dominated run's 4 MiB) under EPT, same STLB: 8 live ways a set, most hits past the set's most recently used way (the set scan)",
    cMode: "tlbhit",
    make: () => new ScratchRange("ept", 1024 * PAGE_SIZE, noCaches),
    bytes: 1024 * PAGE_SIZE,
    seed: 1,
    goals: () => [],
  },
  {
    name: "native1d",
    description: "native 1D walks: 4 levels, 4 KiB pages, 1 GiB footprint, TLB and caches off (4 table reads + data)",
    cMode: "native1d",
    make: () => new ScratchRange("native", GIB, { tlb: null, psc: null }),
    bytes: GIB,
    seed: 4,
    goals: () => [],
  },
  {
    name: "warm2d",
    description: "warm 2D walks: EPT 4+4, 1 GiB footprint, random pages, TLB + paging-structure caches + nested TLB on (no C reference)",
    cMode: null,
    make: () => new ScratchRange("ept", GIB),
    bytes: GIB,
    seed: 3,
    goals: () => [],
  },
];
/**
 * The model's MMU is the wasm core (hw/mmu_core.ts), so the cases and their goals are its, driven
 * as the engine would drive batches (one WasmMmu.accessBatch call per pass); <case>-js runs the
 * same walks on the JS reference Mmu, one call per access, for comparison.
 */
const walkCases: WalkCase[] = [
  ...baseWalkCases.map((w) => ({
    ...w,
    engine: "wasm" as const,
    description: `${w.description}; wasm core, one accessBatch call per pass`,
  })),
  ...baseWalkCases.map((w) => ({
    ...w,
    name: `${w.name}-js`,
    engine: "js" as const,
    description: `${w.description}; the JS reference Mmu, one call per access`,
    goals: () => [],
  })),
];

// ------------------------------------------------------------------ child-process cases

interface ChildRun {
  cpuSeconds: number;
  wallSeconds: number;
  maxRssBytes: number;
  stdout: string;
  status: number | null;
}

/** Runs `node dist/bin/memvirt.js ...args` and returns its whole-process CPU time and peak RSS. */
function runCli(args: string[]): Promise<ChildRun> {
  const ru = join(TMP, `rusage-${Math.random().toString(36).slice(2)}.json`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ["--import", HOOK, CLI, ...args], {
      env: { ...process.env, MEMVIRT_BENCH_RUSAGE: ru, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (status) => {
      const wallSeconds = (performance.now() - t0) / 1000;
      let u: { userUs: number; sysUs: number; maxRssKiB: number };
      try {
        u = JSON.parse(readFileSync(ru, "utf8"));
      } catch {
        reject(new Error(`memvirt ${args.join(" ")} exited ${status} without reporting its usage:\n${stderr.slice(-2000)}`));
        return;
      }
      if (status !== 0 && status !== 1) {
        reject(new Error(`memvirt ${args.join(" ")} exited ${status}:\n${stderr.slice(-2000)}`));
        return;
      }
      resolve({ cpuSeconds: (u.userUs + u.sysUs) / 1e6, wallSeconds, maxRssBytes: u.maxRssKiB * 1024, stdout, status });
    });
  });
}

function scenarioFile(name: string, yaml: string): string {
  const f = join(TMP, `${name}.yaml`);
  writeFileSync(f, yaml);
  return f;
}

/** `memvirt run <scenario> --json - --sample 0`: the report's access count and the child's usage. */
async function runScenario(name: string, yaml: string): Promise<ChildRun & { accesses: number }> {
  const r = await runCli(["run", scenarioFile(name, yaml), "--json", "-", "--sample", "0"]);
  const report = JSON.parse(r.stdout) as { accesses?: number };
  if (typeof report.accesses !== "number") throw new Error(`${name}: the report has no access count`);
  return { ...r, accesses: report.accesses };
}

/** The hit-dominated workload: random accesses over a 4 MiB heap that stays resident. */
const hitScenario = (accesses: number) => `seed: 1
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 512MiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 4MiB}
          - random: {name: heap, accesses: ${accesses}, writeRatio: 0.3}
`;

/** First touches: every access faults (guest #PF, EPT violation exit, host fault). */
const faultScenario = (bytes: string, vmRam: string, hostRam: string) => `seed: 1
host: {ram: ${hostRam}, swap: 0, thp: never}
vms:
  - name: vm0
    ram: ${vmRam}
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: buf, size: ${bytes}}
          - touch: {name: buf, op: write}
`;

/** Peak RSS of a 1-access run: the baseline memory cases subtract. */
let startupRss: number | null = null;
/** Median CPU of the start-up case, if it ran: end-to-end figures also given without it. */
let startupCpu: number | null = null;
async function startupBaseline(): Promise<ChildRun> {
  const r = await runScenario("one-access", readFileSync(join(ROOT, "bench/scenarios/one-access.yaml"), "utf8"));
  startupRss = startupRss === null ? r.maxRssBytes : Math.min(startupRss, r.maxRssBytes);
  return r;
}

function e2eResult(name: string, description: string, r: ChildRun & { accesses: number }): CaseResult {
  return {
    name,
    description,
    figures: {
      accesses: r.accesses,
      cpuSeconds: r.cpuSeconds,
      wallSeconds: r.wallSeconds,
      accessesPerCpuSecond: r.accesses / r.cpuSeconds,
      accessesPerCpuSecondAfterStartup: startupCpu === null ? null : r.accesses / Math.max(r.cpuSeconds - startupCpu, 1e-3),
      maxRssBytes: r.maxRssBytes,
    },
    goals: [],
    agree: [],
    notes: [],
  };
}

interface Case {
  name: string;
  full: boolean;
  run: () => Promise<CaseResult>;
}

const cases: Case[] = [
  ...walkCases.map((w) => ({ name: w.name, full: false, run: () => walkCase(w) })),
  {
    name: "startup",
    full: false,
    run: async () => {
      const runs: ChildRun[] = [];
      for (let i = 0; i < 3; i++) runs.push(await startupBaseline());
      const cpu = median(runs.map((r) => r.cpuSeconds));
      startupCpu = cpu;
      return {
        name: "startup",
        description: "start-up: `memvirt run` of a 1-access scenario, whole-process CPU (median of 3)",
        figures: {
          cpuSeconds: cpu,
          cpuSamples: runs.map((r) => r.cpuSeconds.toFixed(3)).join(" "),
          maxRssBytes: Math.min(...runs.map((r) => r.maxRssBytes)),
        },
        goals: [goal("startupCpu", cpu)],
        agree: [],
        notes: [],
      };
    },
  },
  {
    name: "e2e-hit",
    full: false,
    run: async () => {
      const r = await runScenario("e2e-hit", hitScenario(10_000_000));
      const res = e2eResult(
        "e2e-hit",
        "end to end, hit-dominated: 10^7 random accesses (30% writes) over 4 MiB in an EPT VM, native twin on; whole `memvirt run` process",
        r,
      );
      res.goals.push(goal("hitAccessesPerCpuSecond", r.accesses / r.cpuSeconds));
      return res;
    },
  },
  {
    name: "e2e-fault",
    full: false,
    run: async () => {
      const r = await runScenario("e2e-fault", faultScenario("256MiB", "512MiB", "1GiB"));
      return e2eResult(
        "e2e-fault",
        "end to end, fault-dominated: first write to each of 65,536 pages (256 MiB) in an EPT VM: guest #PF, EPT violation, host fault each; whole process",
        r,
      );
    },
  },
  {
    name: "sweep",
    full: false,
    run: async () => {
      const load = loadavg()[0]!;
      /** `memvirt sweep` of `grid` over the hit-dominated scenario, on 1 lane and on 2: walls, CPUs, speedup, same CSV. */
      const pair = async (tag: string, accesses: number, grid: string) => {
        const scen = scenarioFile(`${tag}-base`, hitScenario(accesses));
        const sweep = scenarioFile(tag, `scenario: ${scen}\ngrid:\n${grid}`);
        const w1 = await runCli(["sweep", sweep, "--workers", "1", "-o", join(TMP, `${tag}-w1.csv`)]);
        const w2 = await runCli(["sweep", sweep, "--workers", "2", "-o", join(TMP, `${tag}-w2.csv`)]);
        const same = readFileSync(join(TMP, `${tag}-w1.csv`), "utf8") === readFileSync(join(TMP, `${tag}-w2.csv`), "utf8");
        return { w1, w2, same, speedup: w1.wallSeconds / w2.wallSeconds, bound: w1.wallSeconds / (w2.cpuSeconds / 2) };
      };
      const short = await pair("sweep", 2_000_000, "  mmu: [ept, npt]\nseeds: [1, 2]\n");
      const long = await pair("sweep-long", 4_000_000, "  mmu: [ept, npt]\n  vms[0].ram: [512MiB, 768MiB]\nseeds: [1, 2]\n");
      const res: CaseResult = {
        name: "sweep",
        description:
          "sweep scaling: `memvirt sweep` of 4 runs (mmu ept/npt x 2 seeds, 2x10^6 accesses each), --workers 1 vs 2; then 8 runs of 4x10^6",
        figures: {
          wall1: short.w1.wallSeconds,
          wall2: short.w2.wallSeconds,
          cpu1: short.w1.cpuSeconds,
          cpu2: short.w2.cpuSeconds,
          speedup: short.speedup,
          // No 2-lane run can end before its CPU time spread over both cores.
          speedupBound: short.bound,
          longWall1: long.w1.wallSeconds,
          longWall2: long.w2.wallSeconds,
          longCpu1: long.w1.cpuSeconds,
          longCpu2: long.w2.cpuSeconds,
          longSpeedup: long.speedup,
          longSpeedupBound: long.bound,
          loadAverage: load,
        },
        goals: [goal("sweepSpeedup", short.speedup)],
        agree: [
          { what: "the CSV of 1 worker and of 2 workers", js: "", c: "", ok: short.same, labels: ["", ""] },
          { what: "the CSV of 1 worker and of 2 workers, 8 runs", js: "", c: "", ok: long.same, labels: ["", ""] },
        ],
        notes: [],
      };
      if (load > 0.5)
        res.notes.push(
          `the machine was not idle (1-minute load average ${load.toFixed(1)} before the sweep): the wall-clock speedup understates what 2 idle cores give`,
        );
      return res;
    },
  },
  {
    name: "e2e-1e8",
    full: true,
    run: async () => {
      const r = await runScenario("e2e-1e8", hitScenario(100_000_000));
      const res = e2eResult("e2e-1e8", "10^8 accesses: the hit-dominated run (random over 4 MiB, EPT, native twin on) at 10^8 accesses", r);
      res.goals.push(goal("run1e8Cpu", r.cpuSeconds));
      return res;
    },
  },
  {
    name: "touch16g",
    full: true,
    run: async () => {
      if (startupRss === null) await startupBaseline();
      const pages = (16 * GIB) / PAGE_SIZE;
      const r = await runScenario("touch16g", faultScenario("16GiB", "17GiB", "20GiB"));
      const res = e2eResult(
        "touch16g",
        "first touch of 16 GiB: a write to each of 4,194,304 pages in an EPT VM; RSS per touched page = (peak RSS - a 1-access run's peak RSS) / pages",
        r,
      );
      const perPage = (r.maxRssBytes - startupRss!) / pages;
      res.figures.rssBytesPerPage = perPage;
      res.goals.push(goal("touch16gBytesPerPage", perPage));
      return res;
    },
  },
  {
    name: "scale16x4g",
    full: true,
    run: async () => {
      const vm = (i: number) => `  - name: vm${i}
    ram: 4GiB
    mmu: ept
    processes:
      - name: p0
        steps:
          - mmap: {name: buf, size: 3GiB}
          - touch: {name: buf, op: write}
`;
      const yaml = `seed: 1\nhost: {ram: 64GiB, swap: 0, thp: never}\nvms:\n${Array.from({ length: 16 }, (_, i) => vm(i)).join("")}`;
      const r = await runScenario("scale16x4g", yaml);
      const res = e2eResult(
        "scale16x4g",
        "scale: 16 VMs of 4 GiB on a 64 GiB host, each writing 3 GiB once (12,582,912 first touches in all)",
        r,
      );
      res.goals.push(goal("scaleCpu", r.cpuSeconds), goal("scaleRss", r.maxRssBytes));
      return res;
    },
  },
];

if (flag("--list")) {
  for (const c of cases) console.log(`${c.name}${c.full ? " (--full)" : ""}`);
  process.exit(0);
}
if (caseFilter) {
  const unknown = caseFilter.filter((n) => !cases.some((c) => c.name === n));
  if (unknown.length) throw new Error(`unknown case ${unknown.join(", ")}; cases: ${cases.map((c) => c.name).join(", ")}`);
}
const selected = cases.filter((c) => (caseFilter ? caseFilter.includes(c.name) : full || !c.full));

const results: CaseResult[] = [];
const t0 = performance.now();
for (const [i, c] of selected.entries()) {
  // ETA: the cases so far, on average (they differ; it settles as the run goes).
  const spent = (performance.now() - t0) / 1000;
  const eta = i === 0 ? "" : `, ETA ~${Math.round((spent / i) * (selected.length - i))} s`;
  progress(`[${i + 1}/${selected.length}] ${c.name} (${spent.toFixed(0)} s so far${eta})`);
  results.push(await c.run());
}
progress(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
const goals = results.flatMap((r) => r.goals);
const disagreements = results.flatMap((r) => r.agree.filter((a) => !a.ok).map((a) => `${r.name}: ${a.what}`));
const os = await import("node:os");
const doc = {
  memvirtBench: 1,
  node: process.version,
  cpus: `${os.cpus()[0]?.model ?? "?"} x ${os.availableParallelism()}`,
  loadAverage: loadavg(),
  timing:
    "CPU time (user + sys) of this process or of the child; medians over samples; model and C samples alternate on one CPU (figures.cpu), ratio = median of the pairs' ratios",
  samples: SAMPLES,
  cReference: cBinary ? "cc -O2 bench/ref/walk.c" : cNote || "not run",
  wallSeconds: (performance.now() - t0) / 1000,
  results,
  goalsMet: goals.filter((g) => g.met).length,
  goalsMissed: goals.filter((g) => !g.met).map((g) => g.id),
  disagreements,
};

const fmtCount = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`);
const fmtRate = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(1)} M/s` : `${(x / 1e3).toFixed(1)} k/s`);
function fmtGoal(g: Goal): string {
  const f = (x: number) =>
    g.id.endsWith("Ratio") || g.id === "sweepSpeedup"
      ? x.toFixed(3)
      : g.id.endsWith("Cpu")
        ? `${x.toFixed(2)} s`
        : g.id === "scaleRss"
          ? `${(x / 1e9).toFixed(2)} GB`
          : g.id.endsWith("BytesPerPage")
            ? `${x.toFixed(0)} B`
            : fmtRate(x);
  return `${g.met ? "met   " : "MISSED"} ${g.text}: ${f(g.measured)} (goal ${g.kind === "min" ? ">=" : "<="} ${f(g.target)})`;
}

if (json) {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
} else {
  const out: string[] = [];
  out.push(`memvirt bench: ${doc.cpus}, node ${process.version}, load ${doc.loadAverage.map((x) => x.toFixed(1)).join(" ")}`);
  out.push(`by CPU time (user + sys), median of ${SAMPLES} samples, model and C alternating; C reference: ${doc.cReference}`);
  for (const r of results) {
    out.push("", `${r.name}: ${r.description}`);
    const f = r.figures;
    if (typeof f.jsPerCpuSecond === "number") {
      const spread = (x: unknown) => `±${((Number(x) * 100) / 2).toFixed(0)}%`;
      let line = `  model ${fmtRate(f.jsPerCpuSecond)} (${spread(f.jsSpread)})`;
      if (typeof f.cPerCpuSecond === "number")
        line += `   C ${fmtRate(f.cPerCpuSecond)} (${spread(f.cSpread)})   ratio ${(f.ratioToC as number).toFixed(3)} of C (pairs ${f.ratioRange})`;
      out.push(line, `  ${(f.refsPerAccess as number).toFixed(2)} memory references per access`);
    } else if (typeof f.accessesPerCpuSecond === "number") {
      out.push(
        `  ${(f.accesses as number).toLocaleString("en-US")} accesses in ${(f.cpuSeconds as number).toFixed(2)} s CPU (${(f.wallSeconds as number).toFixed(2)} s wall): ${fmtCount(f.accessesPerCpuSecond)} accesses per CPU-second; peak RSS ${((f.maxRssBytes as number) / 2 ** 20).toFixed(0)} MiB`,
      );
      if (typeof f.accessesPerCpuSecondAfterStartup === "number")
        out.push(`  ${fmtCount(f.accessesPerCpuSecondAfterStartup)} accesses per CPU-second without the start-up case's CPU`);
      if (typeof f.rssBytesPerPage === "number") out.push(`  ${f.rssBytesPerPage.toFixed(0)} B of RSS per touched page`);
    } else if (r.name === "startup") {
      out.push(
        `  ${(f.cpuSeconds as number).toFixed(3)} s CPU (samples ${f.cpuSamples}); peak RSS ${((f.maxRssBytes as number) / 2 ** 20).toFixed(0)} MiB`,
      );
    } else if (r.name === "sweep") {
      const line = (what: string, k: string) => {
        const g = (x: string) => f[k ? `${k}${x[0]!.toUpperCase()}${x.slice(1)}` : x] as number;
        return `  ${what}: 1 worker ${g("wall1").toFixed(2)} s wall (${g("cpu1").toFixed(2)} s CPU), 2 workers ${g("wall2").toFixed(2)} s wall (${g("cpu2").toFixed(2)} s CPU): ${g("speedup").toFixed(2)}x (at most ${g("speedupBound").toFixed(2)}x: the 2-worker CPU over 2 cores)`;
      };
      out.push(line("4 runs", ""), line("8 runs of 4x10^6", "long"));
    }
    for (const a of r.agree) out.push(`  ${a.ok ? "agree" : "DISAGREE"}: ${a.what}${a.labels ? "" : ` (model ${a.js}, C ${a.c})`}`);
    for (const g of r.goals) out.push(`  ${fmtGoal(g)}`);
    for (const n of r.notes) out.push(`  note: ${n}`);
  }
  out.push(
    "",
    `goals: ${doc.goalsMet} met, ${doc.goalsMissed.length} missed${doc.goalsMissed.length ? ` (${doc.goalsMissed.join(", ")})` : ""}`,
  );
  if (disagreements.length) out.push(`DISAGREEMENTS (the figures compare different work): ${disagreements.join("; ")}`);
  console.log(out.join("\n"));
}
// A disagreement with the C reference means the figures compare different work: always an error.
if (disagreements.length) process.exitCode = 2;
else if (check && goals.some((g) => !g.met)) process.exitCode = 1;
