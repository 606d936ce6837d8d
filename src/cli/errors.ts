// SPDX-License-Identifier: MIT
// How the CLI fails: bad input exits 2 with a message that names the place and the fix;
// anything else is a bug and says so, without a stack trace unless MEMVIRT_DEBUG is set.

export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;

/** Bad input from the user: a clear message, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_USAGE,
  ) {
    super(message);
  }
}
