// SPDX-License-Identifier: MIT
// Runs the CLI in-process with captured output: for tests.

import type { Out } from "./format.js";
import { main } from "./main.js";

export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out: Out = { isTTY: false, write: (s) => (stdout += s), error: (s) => (stderr += s) };
  const code = await main(args, out);
  return { code, stdout, stderr };
}
