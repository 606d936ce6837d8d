// SPDX-License-Identifier: MIT
// Worker threads for `memvirt sweep`, started by the executable (bin.ts) before it loads the
// CLI's module graph: each thread then loads the graph beside the main thread instead of after
// it, which is most of what a short run costs. The sweep command takes them (takeSweepWorkers)
// once it knows how many runs it has; any it does not take are ended (endSweepWorkers).
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/** A started thread, and whether it already failed or ended (no one else listens to it yet). */
interface Started {
  worker: Worker;
  dead: boolean;
}

let started: Started[] = [];

/**
 * The worker threads to start early for `memvirt <argv>`: lanes - 1 for `sweep` (this thread is
 * a lane too), at most one fewer than the cores (a sweep with more lanes starts the rest once it
 * knows it has the runs for them); none for another command, for help, or for a --workers the
 * command will refuse (the value read as the command reads it).
 */
export function sweepThreadsWanted(argv: readonly string[], cores = availableParallelism()): number {
  const args = argv.filter((a) => a !== "--no-color");
  if (args[0] !== "sweep" || args.includes("-h") || args.includes("--help")) return 0;
  let lanes = cores;
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    const v = a === "--workers" ? (args[i + 1] ?? "-") : a.startsWith("--workers=") ? a.slice("--workers=".length) : undefined;
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 1024) return 0;
    lanes = n;
  }
  return Math.max(0, Math.min(lanes, cores) - 1);
}

/** Starts the worker threads a sweep on argv wants, from the worker script at `script`. */
export function prestartSweepWorkers(argv: readonly string[], script: URL, cores = availableParallelism()): void {
  const n = sweepThreadsWanted(argv, cores);
  for (let i = 0; i < n; i++) {
    const s: Started = { worker: new Worker(script), dead: false };
    // Until the sweep takes it: a thread that fails to load is left out, not an unhandled error.
    s.worker.once("error", () => {
      s.dead = true;
    });
    s.worker.once("exit", () => {
      s.dead = true;
    });
    started.push(s);
  }
}

/** Up to n started threads still alive, which the caller then owns (and must terminate). */
export function takeSweepWorkers(n: number): Worker[] {
  const taken = started.filter((s) => !s.dead).slice(0, n);
  started = started.filter((s) => !taken.includes(s));
  return taken.map((s) => s.worker);
}

/** Ends every started thread nobody took (a sweep with fewer runs than threads, or a command that failed first). */
export function endSweepWorkers(): Promise<number[]> {
  const left = started;
  started = [];
  return Promise.all(left.map((s) => s.worker.terminate()));
}
