#!/usr/bin/env node
// Runs the test suite with Vitest and ends with the plain line `N passed, N failed`
// (CI reads it; Vitest's own summary is not a format CI knows). Extra arguments go to Vitest.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const report = ".vitest-report.json";
rmSync(report, { force: true });
const args = ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)];
const run = spawnSync("npx", args, { stdio: "inherit" });
let line = "0 passed, 1 failed";
try {
  const r = JSON.parse(readFileSync(report, "utf8"));
  line = `${r.numPassedTests} passed, ${r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0) + (r.numFailedTestSuites && !r.numFailedTests ? r.numFailedTestSuites : 0)} failed`;
} catch {
  console.error("run-tests: Vitest wrote no report; counting the run as failed");
}
console.log(line);
process.exit(run.status ?? 1);
