// SPDX-License-Identifier: MIT
// Feedback on long work, always on standard error (never in a report on standard output): a
// bar with an ETA on a terminal (cli-progress), a plain line per phase otherwise (a log, a CI
// job). MEMVIRT_PROGRESS=bar|lines|off overrides the choice (the test suite runs with off).

import type { Out } from "./format.js";

type Mode = "bar" | "lines" | "off";

export interface Progress {
  /** A new phase: the bar's label, or a line of its own. */
  phase(label: string, total?: number): void;
  /** Work done out of total (accesses, runs, schedules) in the current phase. */
  update(done: number, total: number): void;
  /** The end: the bar is cleared; a line says how long it took. */
  stop(): void;
}

function mode(out: Out): Mode {
  const env = process.env.MEMVIRT_PROGRESS;
  if (env === "bar" || env === "lines" || env === "off") return env;
  const errTTY = (out as { errIsTTY?: boolean }).errIsTTY ?? (out.isTTY && process.stderr.isTTY === true);
  return errTTY ? "bar" : "lines";
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Progress of `command` (run, compare, check, ...) counted in `unit` (accesses, schedules). */
export async function startProgress(out: Out, command: string, unit: string): Promise<Progress> {
  const m = mode(out);
  const started = Date.now();
  if (m === "off") return { phase() {}, update() {}, stop() {} };
  if (m === "lines") {
    return {
      phase: (label, total) =>
        out.error(`memvirt ${command}: ${label}${total === undefined ? "" : ` (${total.toLocaleString("en-US")} ${unit})`}\n`),
      update() {},
      stop: () => out.error(`memvirt ${command}: done in ${seconds(Date.now() - started)}\n`),
    };
  }
  // cli-progress loads only for a terminal (start-up of every other use).
  const cliProgress = (await import("cli-progress")).default;
  const bar = new cliProgress.SingleBar(
    {
      format: `memvirt ${command} {phase} [{bar}] {percentage}% | ETA {eta_formatted} | {value}/{total} ${unit}`,
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
      etaBuffer: 50,
      // Colour-free, like the rest of memvirt's output without a terminal or with NO_COLOR.
      barCompleteChar: "#",
      barIncompleteChar: "-",
    },
    cliProgress.Presets.legacy,
  );
  let running = false;
  return {
    phase(label, total) {
      if (!running) bar.start(total ?? 1, 0, { phase: label });
      else bar.update({ phase: label });
      if (total !== undefined) bar.setTotal(total);
      running = true;
    },
    update(done, total) {
      if (!running) bar.start(total, done, { phase: "" });
      running = true;
      // A trace's length is not known until its end: the total then grows with the count.
      bar.setTotal(Math.max(total, done));
      bar.update(done);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
