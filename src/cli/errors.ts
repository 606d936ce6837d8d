// SPDX-License-Identifier: MIT
// How the CLI fails: bad input exits 2 with a message that names the place and the fix;
// anything else is a bug and says so, without a stack trace unless MEMVIRT_DEBUG is set.

export const EXIT_OK = 0;
/** The run failed (a VM could not go on, an output could not be written) or its checker found something. */
export const EXIT_RUN_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;
/** SIGINT or SIGTERM: 128 + SIGINT's number, as a shell reports a Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/** Every exit code of every command, with its meaning: `--help` and README print this table. */
export const EXIT_CODES: readonly { code: number; meaning: string }[] = [
  { code: EXIT_OK, meaning: "clean run: it finished and its checker found nothing" },
  {
    code: EXIT_RUN_FAILED,
    meaning:
      "the run failed (a VM could not go on, a livelock in the model, an output could not be written) or its checker found a data error, stale mapping or invariant violation",
  },
  { code: EXIT_USAGE, meaning: "bad input (options, scenario, sweep, trace, output path); nothing was run or written" },
  { code: EXIT_INTERNAL, meaning: "internal error: a bug in memvirt (MEMVIRT_DEBUG=1 prints the stack)" },
  { code: EXIT_INTERRUPTED, meaning: "interrupted by SIGINT or SIGTERM; no output file was written" },
];

/** Bad input from the user: a clear message, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_USAGE,
  ) {
    super(message);
  }
}
