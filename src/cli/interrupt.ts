// SPDX-License-Identifier: MIT
// SIGINT and SIGTERM: run the cleanups registered by the work in progress (temporary files,
// child processes), print one line, exit 130. Long loops await pause() now and then, so
// the handler gets a turn; the registry is process-wide because signals are.

import { EXIT_INTERRUPTED } from "./errors.js";

const cleanups = new Set<() => void>();
let installed = false;

/** Registers a cleanup to run on interruption; returns its removal. */
export function onInterrupt(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/**
 * Runs every registered cleanup (each once, errors ignored), the last registered first: a resource
 * is released before what it was built on (trace record kills Valgrind before removing its directory).
 */
export function runCleanups(): void {
  for (const c of [...cleanups].reverse()) {
    cleanups.delete(c);
    try {
      c();
    } catch {}
  }
}

/** Installs the handlers; only the real entry point does (not in-process tests). */
export function installInterruptHandlers(): void {
  if (installed) return;
  installed = true;
  const handler = () => {
    runCleanups();
    process.stderr.write(`${process.stderr.isTTY ? "\r\u001b[K" : ""}memvirt: interrupted; no output written\n`);
    process.exit(EXIT_INTERRUPTED);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/** Lets the event loop run (signal handlers included) before going on. */
export function pause(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
