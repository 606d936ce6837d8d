// SPDX-License-Identifier: MIT
// `memvirt trace record [-o file] -- <command...>`: run a command under Valgrind's Lackey
// and write its memory accesses in memvirt's trace format; `memvirt trace info <file>`:
// what a trace holds.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Command } from "@commander-js/extra-typings";
import { Gzip } from "fflate";
import { PAGE_SIZE } from "../hw/addr.js";
import { AccessBatch, OP_WRITE } from "../workload/stream.js";
import { MvtWriter, TraceError, openTrace } from "../workload/trace.js";
import { UsageError } from "./errors.js";
import { FileSource } from "./file_source.js";
import { type Out, n, table } from "./format.js";
import { onInterrupt, pause } from "./interrupt.js";
import { type Output, STDOUT, checkOutputPaths, prepareOutputs, removeStaleTemps } from "./output.js";

export interface TraceSummary {
  file: string;
  format: string;
  accesses: number;
  reads: number;
  writes: number;
  /** Distinct 4 KiB pages touched: the footprint. */
  pages: number;
  lowest: number;
  highest: number;
  /** Distinct 1 MiB regions (what replay maps for the guest process). */
  regions: number;
  skippedLines: number;
}

/** Reads a whole trace once (constant memory but the page set) and summarizes it. */
export function summarizeTrace(path: string): TraceSummary {
  const src = new FileSource(path);
  const t = openTrace(src, path);
  const b = new AccessBatch(8192);
  const pages = new Set<number>();
  const regions = new Set<number>();
  let reads = 0;
  let writes = 0;
  let lowest = Number.POSITIVE_INFINITY;
  let highest = 0;
  let k: number;
  while ((k = t.fill(b)) > 0) {
    for (let i = 0; i < k; i++) {
      const a = b.addrs[i]!;
      if (b.ops[i] === OP_WRITE) writes++;
      else reads++;
      pages.add(Math.floor(a / PAGE_SIZE));
      regions.add(Math.floor(a / 2 ** 20));
      if (a < lowest) lowest = a;
      if (a > highest) highest = a;
    }
  }
  return {
    file: path,
    format: t.format,
    accesses: t.count,
    reads,
    writes,
    pages: pages.size,
    lowest: t.count ? lowest : 0,
    highest,
    regions: regions.size,
    skippedLines: t.skipped,
  };
}

/** Converts a Lackey log to the memvirt format (gzip-compressed with `gzip`) into `output`; returns the access count. */
export async function convertLackey(lackeyPath: string, output: Output, gzip: boolean): Promise<number> {
  const gz = gzip ? new Gzip({ level: 9 }, (chunk) => output.write(chunk)) : null;
  const w = new MvtWriter((bytes) => (gz ? gz.push(bytes) : output.write(bytes)));
  const t = openTrace(new FileSource(lackeyPath), lackeyPath);
  const b = new AccessBatch(8192);
  let k: number;
  for (let batches = 1; (k = t.fill(b)) > 0; batches++) {
    for (let i = 0; i < k; i++) w.write(b.addrs[i]!, b.ops[i]!);
    if (batches % 64 === 0) await pause();
  }
  w.flush();
  gz?.push(new Uint8Array(0), true);
  return w.count;
}

/** Runs `command` under Lackey, logging to `log`; a SIGINT/SIGTERM of memvirt kills it too. */
function runLackey(command: string[], log: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    // Valgrind's own temporary files go into the log's directory too, which memvirt removes whole.
    const child = spawn("valgrind", ["--tool=lackey", "--trace-mem=yes", `--log-file=${log}`, ...command], {
      stdio: "inherit",
      env: { ...process.env, TMPDIR: dirname(log) },
    });
    const unregister = onInterrupt(() => child.kill("SIGKILL"));
    child.on("error", (e) => {
      unregister();
      reject(new UsageError(`cannot run ${command[0]}: ${e.message}`));
    });
    child.on("close", (code) => {
      unregister();
      resolve(code);
    });
  });
}

export function traceCommand(out: Out): Command {
  const trace = new Command("trace").description("record and inspect memory-access traces");
  trace
    .command("record")
    .description("run a command under Valgrind's Lackey and write its memory accesses as a memvirt trace")
    .option("-o, --output <file>", "trace file to write (.mvt, or .mvt.gz to compress; - for gzip on standard output)", "trace.mvt.gz")
    .argument("<command...>", "the command to trace, after --")
    .action(async (command, o) => {
      checkOutputPaths([{ option: "-o/--output", path: o.output }], []);
      const which = spawnSync("valgrind", ["--version"], { encoding: "utf8" });
      if (which.error || which.status !== 0)
        throw new UsageError("trace record needs Valgrind (valgrind --tool=lackey); install the valgrind package");
      // The traced program (if named by a path) is an input the trace may not overwrite.
      const outputs = prepareOutputs([{ option: "-o/--output", path: o.output }], command[0]?.includes("/") ? [command[0]] : [], out);
      removeStaleTemps(tmpdir());
      const dir = mkdtempSync(join(tmpdir(), `memvirt-trace-${process.pid}-`));
      const unregister = onInterrupt(() => rmSync(dir, { recursive: true, force: true }));
      const log = join(dir, "lackey.log");
      try {
        const status = await runLackey(command, log);
        const count = await convertLackey(log, outputs.get("-o/--output")!, o.output === STDOUT || o.output.endsWith(".gz"));
        await outputs.commitAll();
        if (!outputs.toStdout)
          out.write(`recorded ${n(count)} accesses of \`${command.join(" ")}\` (exit code ${status}) in ${o.output}\n`);
      } catch (e) {
        if (e instanceof TraceError) throw new UsageError(e.message);
        throw e;
      } finally {
        outputs.discardAll();
        unregister();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  trace
    .command("info")
    .description("summarize a trace: accesses, reads and writes, footprint, address range")
    .argument("<file>", "a Lackey log or a memvirt trace, plain or gzip")
    .option("--json", "print the summary as JSON")
    .action((file, o) => {
      let s: TraceSummary;
      try {
        s = summarizeTrace(file);
      } catch (e) {
        if (e instanceof TraceError) throw new UsageError(e.message.startsWith(file) ? e.message : `${file}: ${e.message}`);
        throw e;
      }
      if (o.json) {
        out.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const rows: (string | number)[][] = [
        ["format", s.format === "mvt" ? "memvirt trace" : s.format === "champsim" ? "ChampSim instruction trace" : "Valgrind Lackey log"],
        ["accesses", n(s.accesses)],
        ["reads (incl. instruction fetches)", n(s.reads)],
        ["writes", n(s.writes)],
        ["footprint", `${n(s.pages)} pages (${(s.pages * 4).toLocaleString("en-US")} KiB)`],
        ["address range", `0x${s.lowest.toString(16)} - 0x${s.highest.toString(16)}`],
        ["1 MiB regions replay maps", n(s.regions)],
      ];
      if (s.format === "lackey") rows.push(["log and blank lines skipped", n(s.skippedLines)]);
      out.write(`${file}\n${table(out, ["", "value"], rows, ["left", "right"])}\n`);
    });
  return trace;
}
