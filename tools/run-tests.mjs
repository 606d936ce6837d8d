#!/usr/bin/env node
// Runs the test suite with Vitest and ends with the plain line `N passed, N failed` (CI reads
// it; Vitest's own summary is not a format CI knows), after a line naming what was skipped.
// With CI=true a skipped browser suite (no Chromium) is a failure: CI must run it.
// Extra arguments go to Vitest (`npm run test:quick` passes --exclude globs).
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { relative } from "node:path";

const report = ".vitest-report.json";
const BROWSER_SUITE = "test/web/browser.test.ts";
rmSync(report, { force: true });
const args = ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)];
const run = spawnSync("npx", args, { stdio: "inherit" });
let line = "0 passed, 1 failed";
let status = run.status ?? 1;
try {
  const r = JSON.parse(readFileSync(report, "utf8"));
  let failed =
    r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0) + (r.numFailedTestSuites && !r.numFailedTests ? r.numFailedTestSuites : 0);
  // Skipped: it.skip / describe.skipIf (pending) and todo, by file.
  const skippedBy = new Map();
  for (const f of r.testResults ?? []) {
    const n = (f.assertionResults ?? []).filter((a) => a.status === "pending" || a.status === "skipped" || a.status === "todo").length;
    if (n > 0) skippedBy.set(relative(process.cwd(), f.name), n);
  }
  const skipped = [...skippedBy.values()].reduce((a, b) => a + b, 0);
  console.log(skipped === 0 ? "skipped: none" : `skipped: ${skipped} (${[...skippedBy].map(([f, n]) => `${f}: ${n}`).join(", ")})`);
  const browserRan = (r.testResults ?? []).some(
    (f) =>
      relative(process.cwd(), f.name) === BROWSER_SUITE &&
      (f.assertionResults ?? []).some((a) => a.status === "passed" || a.status === "failed"),
  );
  // Expected whenever the run was not narrowed to other files (test:quick excludes it on purpose).
  const extra = process.argv.slice(2);
  const files = extra.filter((a, i) => !a.startsWith("-") && !(extra[i - 1] ?? "").startsWith("--exclude"));
  const browserAsked =
    !extra.some((a) => a.startsWith("--exclude")) && (files.length === 0 || files.some((f) => BROWSER_SUITE.includes(f)));
  if (process.env.CI === "true" && browserAsked && !browserRan) {
    console.error(`run-tests: CI=true and ${BROWSER_SUITE} did not run (Chromium missing?): counted as a failure`);
    failed++;
    status = status || 1;
  }
  if (status !== 0 && failed === 0) {
    // Vitest failed the run with every test passing: an unhandled error (a rejection, an 'error' event no one listens to).
    console.error("run-tests: Vitest exited with an error and no failed test (an unhandled error, reported above): counted as a failure");
    failed = 1;
  }
  line = `${r.numPassedTests} passed, ${failed} failed`;
} catch {
  console.error("run-tests: Vitest wrote no report; counting the run as failed");
  status = status || 1;
}
console.log(line);
process.exit(status);
