#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The `memvirt` executable (bundled as dist/bin/memvirt.js). A sweep's worker threads start
// first, so they load the module graph while this thread loads it for the command.
import { endSweepWorkers, prestartSweepWorkers } from "./sweep_prestart.js";

const argv = process.argv.slice(2);
prestartSweepWorkers(argv, new URL("./sweep_worker.js", import.meta.url));
const { runAsCli } = await import("./main.js");
process.exitCode = await runAsCli(argv);
await endSweepWorkers();
