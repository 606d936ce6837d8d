#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The memvirt command line.

import { Command, CommanderError } from "@commander-js/extra-typings";
import { EXIT_CODES, EXIT_INTERNAL, EXIT_RUN_FAILED, EXIT_USAGE, UsageError } from "./errors.js";
import { type Out, stdoutOut } from "./format.js";
import { installInterruptHandlers, runCleanups } from "./interrupt.js";
import { RunExit, runCommand } from "./run_cmd.js";
import { checkCommand } from "./check_cmd.js";
import { plotCommand } from "./plot_cmd.js";
import { serveCommand } from "./serve_cmd.js";
import { sweepCommand } from "./sweep_cmd.js";
import { traceCommand } from "./trace_cmd.js";
import { translateCommand } from "./translate_cmd.js";
// ---- selftest (issue 14) ----
import { selftestCommand } from "./selftest_cmd.js";
// issue 17: explain, --no-color
import { explainCommand } from "./explain_cmd.js";

const OUTPUT_HELP = `Output files (every option that writes one): - is standard output (for one option at most); a file is
written whole or not at all (a temporary file beside it, renamed over it; a symlink's target is
replaced); a device or FIFO is written in place after the run (a FIFO waits for its reader); an
input of the command is never overwritten. With several outputs, all are written or none is.`;

export function buildProgram(out: Out): Command {
  const program = new Command("memvirt")
    .description("a model of QEMU/KVM memory virtualization on x86-64: walks, faults, reclaim and swap, counted")
    .version("0.1.0")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => out.error(s) })
    .addHelpText(
      "after",
      `\n${OUTPUT_HELP}\n\nColour: only on a terminal; never with NO_COLOR set or --no-color (any command).\n\nExit codes (every command):\n${EXIT_CODES.map((e) => `  ${String(e.code).padStart(3)}  ${e.meaning}`).join("\n")}\n`,
    );
  for (const cmd of [
    translateCommand(out),
    runCommand(out),
    checkCommand(out),
    traceCommand(out),
    plotCommand(out),
    sweepCommand(out),
    serveCommand(out),
    selftestCommand(out),
    explainCommand(out),
  ]) {
    cmd.copyInheritedSettings(program);
    program.addCommand(cmd);
  }
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it. */
export async function main(argv: string[], out: Out = stdoutOut()): Promise<number> {
  // --no-color, anywhere on the line and for every command: no escape code at all.
  const noColor = argv.includes("--no-color");
  const o: Out = noColor ? { ...out, color: false } : out;
  const program = buildProgram(o);
  try {
    await program.parseAsync(
      argv.filter((a) => a !== "--no-color"),
      { from: "user" },
    );
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version end here too, with exit code 0.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    // A command that already printed why it failed (run: the scenario's errors, a failed run).
    if (e instanceof RunExit) return e.exitCode;
    if (e instanceof UsageError) {
      out.error(`memvirt: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    out.error(`memvirt: internal error: ${err.message}\n(this is a bug in memvirt; run with MEMVIRT_DEBUG=1 for the stack)\n`);
    if (process.env.MEMVIRT_DEBUG) out.error(`${err.stack}\n`);
    return EXIT_INTERNAL;
  }
}

/** `memvirt <argv>` as the executable runs it (bin.ts): interrupts and a closed stdout handled, the exit code returned. */
export function runAsCli(argv: string[]): Promise<number> {
  installInterruptHandlers();
  // A reader that stops early (`| head`): end quietly, as other tools do, not with a stack trace.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    runCleanups();
    process.exit(typeof process.exitCode === "number" ? process.exitCode : EXIT_RUN_FAILED);
  });
  return main(argv);
}

// Run directly (`npx tsx src/cli/main.ts ...`); the built executable enters through bin.ts.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  runAsCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
