// SPDX-License-Identifier: MIT
// Preloaded into a child process (`node --import bench/lib/rusage_hook.mjs ...`): when the child
// exits, writes its whole-process CPU time (user + sys, every thread, from process start) and
// peak RSS to the file named by MEMVIRT_BENCH_RUSAGE. Node has no getrusage(RUSAGE_CHILDREN),
// so the child reports on itself.
import { writeFileSync } from "node:fs";

const file = process.env.MEMVIRT_BENCH_RUSAGE;
if (file) {
  process.on("exit", () => {
    const cpu = process.cpuUsage();
    const ru = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ userUs: cpu.user, sysUs: cpu.system, maxRssKiB: ru.maxRSS, rss: process.memoryUsage().rss }));
  });
}
