// SPDX-License-Identifier: MIT
// Worker threads for `memvirt sweep`, started by the executable (bin.ts) before it loads the
// CLI's module graph: each thread then loads the graph beside the main thread instead of after
// it, which is most of what a short run costs. The sweep command takes them (takeSweepWorkers)
// once it knows how many runs it has; any it does not take are ended (endSweepWorkers).
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

let started: Worker[] = [];

/**
 * The worker threads `memvirt <argv>` will want: lanes - 1 for `sweep` (this thread is a lane
 * too), 0 for any other command, for help, or for a --workers the command will refuse.
 */
export function sweepThreadsWanted(argv: readonly string[], cores = availableParallelism()): number {
  const args = argv.filter((a) => a !== "--no-color");
  if (args[0] !== "sweep" || args.includes("-h") || args.includes("--help")) return 0;
  let lanes = cores;
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    const v = a === "--workers" ? args[i + 1] : a.startsWith("--workers=") ? a.slice("--workers=".length) : undefined;
    if (v === undefined) continue;
    if (!/^\d+$/.test(v) || Number(v) > 1024) return 0;
    lanes = Number(v);
  }
  return Math.max(0, lanes - 1);
}

/** Starts the worker threads a sweep on argv wants, from the worker script at `script`. */
export function prestartSweepWorkers(argv: readonly string[], script: URL): void {
  const n = sweepThreadsWanted(argv);
  for (let i = 0; i < n; i++) started.push(new Worker(script));
}

/** Up to n started threads, which the caller then owns (and must terminate). */
export function takeSweepWorkers(n: number): Worker[] {
  const taken = started.slice(0, n);
  started = started.slice(n);
  return taken;
}

/** Ends every started thread nobody took (a sweep with fewer runs than threads, or a command that failed first). */
export function endSweepWorkers(): Promise<number[]> {
  const left = started;
  started = [];
  return Promise.all(left.map((w) => w.terminate()));
}
