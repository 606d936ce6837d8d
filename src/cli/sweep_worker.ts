// SPDX-License-Identifier: MIT
// A piscina worker: runs one sweep task (see sweep_run.ts).
import { type SweepResult, type SweepTask, runSweepTask } from "./sweep_run.js";

export default function (task: SweepTask): SweepResult {
  return runSweepTask(task);
}
