import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    pool: "threads",
    // No progress lines on the commands' stderr (tests that want them set MEMVIRT_PROGRESS).
    env: { MEMVIRT_PROGRESS: "off" },
  },
});
