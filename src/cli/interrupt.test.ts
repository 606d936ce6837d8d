// SPDX-License-Identifier: MIT
// Cleanups on interruption unwind like a stack: what was set up last is released first.
import { expect, test } from "vitest";
import { onInterrupt, runCleanups } from "./interrupt.js";

test("cleanups run once each, the last registered first; a removed one does not run", () => {
  const order: string[] = [];
  onInterrupt(() => order.push("directory removed"));
  const gone = onInterrupt(() => order.push("never"));
  onInterrupt(() => order.push("child killed"));
  gone();
  runCleanups();
  runCleanups();
  expect(order).toEqual(["child killed", "directory removed"]);
});
