// SPDX-License-Identifier: MIT
// A sweep worker thread: runs the tasks it is sent, one at a time, and answers each with its
// position and result (see sweep_lanes.ts). It loads the module graph as soon as it starts, so a
// thread started early (sweep_prestart.ts) loads beside the main thread.
import { parentPort } from "node:worker_threads";
import { runSweepTask } from "./sweep_run.js";
import type { LaneReply, LaneRequest } from "./sweep_lanes.js";

parentPort?.on("message", (m: LaneRequest) => {
  const reply: LaneReply = { pos: m.pos, result: runSweepTask(m.task) };
  parentPort!.postMessage(reply);
});
