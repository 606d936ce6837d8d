// SPDX-License-Identifier: MIT
// The OOM killer (mm/oom_kill.c): when reclaim cannot free anything, pick the process
// with the largest oom_badness() (RSS + swap entries + page-table pages) and kill it.
// simplified: the victim's mm is torn down at once (exit_mmap), with no oom_reaper step
// and no TIF_MEMDIE reserves; every process has oom_score_adj 0.

import type { HostKernel } from "./kernel.js";
import type { Mm } from "./mm_types.js";
import { exitMmap } from "./mmap.js";

/** oom_badness(): pages the kill would free. */
export function oomBadness(mm: Mm): number {
  return mm.rss + mm.swapents + mm.pgtablesBytes / 4096;
}

/** out_of_memory(): kill the worst process; returns it, or null if there was nobody to kill. */
export function outOfMemory(k: HostKernel, order: number): Mm | null {
  const cur = k.current;
  const invoker = cur
    ? `${cur.name} invoked oom-killer: gfp_mask=GFP_HIGHUSER_MOVABLE, order=${order}, oom_score_adj=0`
    : `oom-killer invoked: order=${order}`;
  // select_bad_process(): tasks in creation order; a tie goes to the later one.
  let victim: Mm | null = null;
  let best = -1;
  for (const mm of k.processes()) {
    const points = oomBadness(mm);
    if (points >= best) {
      best = points;
      victim = mm;
    }
  }
  if (!victim) {
    const message = "Out of memory and no killable processes...";
    k.lastOomMessage = message;
    if (k.bus.on) k.bus.emit("host.oom", { victim: 0, name: "", message, invoker, order });
    return null;
  }
  const message =
    `Out of memory: Killed process ${victim.id} (${victim.name}) total-vm:${victim.totalVm * 4}kB, ` +
    `anon-rss:${victim.rss * 4}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:${victim.pgtablesBytes / 1024}kB oom_score_adj:0`;
  k.stat.oom_kill++;
  k.lastOomMessage = message;
  if (k.bus.on)
    k.bus.emit("host.oom", { victim: victim.id, name: victim.name, message, invoker, order, rss: victim.rss, swapents: victim.swapents });
  exitMmap(k, victim);
  return victim;
}
