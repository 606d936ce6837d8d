// SPDX-License-Identifier: MIT
import { EventEmitter } from "node:events";
import { describe, expect, test } from "vitest";
import { type LaneReply, type LaneRequest, type LaneWorker, runOnLanes } from "./sweep_lanes.js";
import type { SweepResult, SweepTask } from "./sweep_run.js";

const tasks = (n: number): SweepTask[] =>
  Array.from({ length: n }, (_, i) => ({
    index: 10 + i,
    label: `t${i}`,
    text: "",
    name: "s.yaml",
    path: "",
    overrides: {},
    seed: i,
    scenario: {} as SweepTask["scenario"],
  }));

const resultOf = (t: SweepTask, by: string): SweepResult => ({ index: t.index, rows: [[by, t.label]] });

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A worker thread stand-in: answers each request after `delayMs`, and records what it held at once. */
class FakeWorker extends EventEmitter implements LaneWorker {
  held = 0;
  maxHeld = 0;
  ran: string[] = [];
  constructor(
    readonly name: string,
    readonly delayMs: number,
    readonly failOn?: string,
  ) {
    super();
  }
  postMessage(m: LaneRequest): void {
    this.held++;
    this.maxHeld = Math.max(this.maxHeld, this.held);
    setTimeout(() => {
      if (m.task.label === this.failOn) {
        this.emit("error", new Error("out of memory"));
        return;
      }
      this.ran.push(m.task.label);
      this.held--;
      const reply: LaneReply = { pos: m.pos, result: resultOf(m.task, this.name) };
      this.emit("message", reply);
    }, this.delayMs);
  }
}

describe("runOnLanes: this thread and worker threads share one queue", () => {
  test("every task runs once, results come back in the tasks' order, and every lane takes a share", async () => {
    const ts = tasks(12);
    const workers = [new FakeWorker("w0", 3), new FakeWorker("w1", 5)];
    const here: string[] = [];
    let done = 0;
    const results = await runOnLanes(
      ts,
      workers,
      async (t) => {
        here.push(t.label);
        await new Promise((r) => setTimeout(r, 4));
        return resultOf(t, "here");
      },
      turn,
      () => done++,
    );
    expect(results.map((r) => r.index)).toEqual(ts.map((t) => t.index));
    expect(results.map((r) => r.rows[0]![1])).toEqual(ts.map((t) => t.label));
    const ran = [...here, ...workers[0]!.ran, ...workers[1]!.ran].sort();
    expect(ran).toEqual(ts.map((t) => t.label).sort());
    expect(here.length).toBeGreaterThan(0);
    for (const w of workers) {
      expect(w.ran.length).toBeGreaterThan(0);
      expect(w.maxHeld).toBe(1); // a worker gets its next task when it answers, never two at once
    }
    expect(done).toBe(12);
  });

  test("with no worker thread, everything runs here in order", async () => {
    const ts = tasks(3);
    const order: string[] = [];
    const results = await runOnLanes(
      ts,
      [],
      async (t) => {
        order.push(t.label);
        return resultOf(t, "here");
      },
      turn,
      () => {},
    );
    expect(order).toEqual(["t0", "t1", "t2"]);
    expect(results.map((r) => r.rows[0]![0])).toEqual(["here", "here", "here"]);
  });

  test("a worker that fails rejects the sweep, naming why", async () => {
    const w = new FakeWorker("w0", 1, "t0");
    const slowHere = async (t: SweepTask) => {
      await new Promise((r) => setTimeout(r, 20));
      return resultOf(t, "here");
    };
    await expect(runOnLanes(tasks(4), [w], slowHere, turn, () => {})).rejects.toThrow(/a sweep worker thread failed: out of memory/);
  });

  test("a worker that exits in the middle of a run rejects the sweep; one that exits idle does not", async () => {
    const dying = new FakeWorker("w0", 50);
    const p = runOnLanes(
      tasks(2),
      [dying],
      async (t) => resultOf(t, "here"),
      turn,
      () => {},
    );
    dying.emit("exit", 1);
    await expect(p).rejects.toThrow(/exited \(code 1\) in the middle of a run/);

    const idle = new FakeWorker("w1", 1);
    const ok = await runOnLanes(
      tasks(1),
      [idle],
      async (t) => resultOf(t, "here"),
      turn,
      () => {},
    );
    idle.emit("exit", 0);
    expect(ok.map((r) => r.index)).toEqual([10]);
  });

  test("once a worker fails, this thread's run stops at its next pause and nothing is counted after", async () => {
    const w = new FakeWorker("w0", 5, "t0");
    let slices = 0;
    let stoppedBy: unknown = null;
    let done = 0;
    // A long run here: 1000 slices unless a pause stops it.
    const longHere = async (t: SweepTask, pause: () => Promise<void>) => {
      try {
        for (let i = 0; i < 1000; i++) {
          slices++;
          await pause();
        }
      } catch (e) {
        stoppedBy = e;
        return { index: t.index, rows: [], error: "stopped" };
      }
      return resultOf(t, "here");
    };
    const p = runOnLanes(tasks(3), [w], longHere, turn, () => done++);
    await expect(p).rejects.toThrow(/out of memory/);
    await new Promise((r) => setTimeout(r, 30));
    expect(stoppedBy).not.toBeNull();
    expect(slices).toBeLessThan(1000);
    expect(done).toBe(0);
  });
});
