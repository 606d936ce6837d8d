// SPDX-License-Identifier: MIT
// The lanes of `memvirt sweep --workers n`: this thread runs tasks itself and n - 1 worker
// threads run the others, each lane taking the next task from one queue when it is free. This
// thread's own runs yield to the event loop between slices, so a worker that finishes gets its
// next task at once. (A pool such as piscina neither lets this thread be a lane nor adopts
// threads started before it loads, which is what lets them load beside this one.)
import type { SweepResult, SweepTask } from "./sweep_run.js";

/** What this thread sends a worker: a task and its position in the sweep. */
export interface LaneRequest {
  pos: number;
  task: SweepTask;
}

/** A worker's answer. */
export interface LaneReply {
  pos: number;
  result: SweepResult;
}

/** The part of a worker_threads Worker the lanes use (tests pass their own). */
export interface LaneWorker {
  postMessage(m: LaneRequest): void;
  on(event: "message", f: (m: LaneReply) => void): unknown;
  on(event: "error", f: (e: Error) => void): unknown;
  on(event: "exit", f: (code: number) => void): unknown;
}

/** Thrown by the pause of this thread's run once the sweep has failed: the run stops at its next slice. */
class SweepStopped extends Error {}

/**
 * Runs every task once, on this thread (runHere, which awaits `pause` between slices of its run)
 * and on the workers; results come back in the tasks' order. A worker that fails, or exits with
 * a task in hand, rejects the whole sweep: this thread's run stops at its next slice and no
 * result or onDone() comes after the rejection.
 */
export function runOnLanes(
  tasks: readonly SweepTask[],
  workers: readonly LaneWorker[],
  runHere: (t: SweepTask, pause: () => Promise<void>) => Promise<SweepResult>,
  pause: () => Promise<void>,
  onDone: () => void,
): Promise<SweepResult[]> {
  const results: (SweepResult | undefined)[] = new Array(tasks.length);
  let next = 0;
  let finished = 0;
  return new Promise<SweepResult[]>((resolve, reject) => {
    let failed = false;
    const fail = (e: Error) => {
      if (!failed) reject(e);
      failed = true;
    };
    const settle = () => {
      if (!failed && finished === tasks.length) resolve(results as SweepResult[]);
    };
    const pauseHere = async () => {
      await pause();
      if (failed) throw new SweepStopped();
    };
    const busy = workers.map(() => false);
    const feed = (w: number) => {
      if (failed || busy[w] || next >= tasks.length) return;
      const pos = next++;
      busy[w] = true;
      workers[w]!.postMessage({ pos, task: tasks[pos]! });
    };
    workers.forEach((worker, w) => {
      worker.on("message", (m) => {
        busy[w] = false;
        if (failed) return;
        results[m.pos] = m.result;
        finished++;
        onDone();
        feed(w);
        settle();
      });
      worker.on("error", (e) => fail(new Error(`a sweep worker thread failed: ${e.message}`)));
      worker.on("exit", (code) => {
        if (busy[w]) fail(new Error(`a sweep worker thread exited (code ${code}) in the middle of a run`));
      });
      feed(w);
    });
    const here = async () => {
      while (!failed && next < tasks.length) {
        const pos = next++;
        const r = await runHere(tasks[pos]!, pauseHere);
        if (failed) return;
        results[pos] = r;
        finished++;
        onDone();
      }
      settle();
    };
    here().catch(fail);
  });
}
