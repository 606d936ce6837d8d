// SPDX-License-Identifier: MIT
// `memvirt serve`: the static server of the built page (no browser needed here).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { UsageError } from "../../src/cli/errors.js";
import type { Out } from "../../src/cli/format.js";
import { defaultWebRoot, serveCommand, startServer } from "../../src/cli/serve_cmd.js";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "memvirt-serve-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(dir, "assets", "app.js"), "export const x = 1;\n");
  writeFileSync(join(dir, "..", "memvirt-serve-secret.txt"), "secret");
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(dir, "..", "memvirt-serve-secret.txt"), { force: true });
});

function capture(): Out & { text: () => string } {
  let s = "";
  return { isTTY: false, write: (x) => (s += x), error: (x) => (s += x), text: () => s };
}

describe("memvirt serve", () => {
  test("serves index.html and assets with their content types, on 127.0.0.1 only", async () => {
    const h = await startServer(dir, 0);
    try {
      expect(h.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const index = await fetch(h.url);
      expect(index.status).toBe(200);
      expect(index.headers.get("content-type")).toMatch(/^text\/html/);
      const js = await fetch(`${h.url}assets/app.js`);
      expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
      expect(await js.text()).toContain("export const x");
      expect((await fetch(`${h.url}nope.js`)).status).toBe(404);
      expect((await fetch(h.url, { method: "POST" })).status).toBe(405);
    } finally {
      await h.close();
    }
  });

  test("refuses paths outside the served directory", async () => {
    const h = await startServer(dir, 0);
    try {
      const r = await fetch(`${h.url}%2e%2e/memvirt-serve-secret.txt`);
      expect([403, 404]).toContain(r.status);
      expect(await r.text()).not.toContain("secret");
    } finally {
      await h.close();
    }
  });

  test("a missing build is a usage error (exit 2) that says how to build", async () => {
    const missing = join(dir, "no-such-build");
    await expect(startServer(missing, 0)).rejects.toThrow(UsageError);
    await expect(startServer(missing, 0)).rejects.toThrow(/npm run build/);
    const out = capture();
    const err = await serveCommand(out)
      .exitOverride()
      .parseAsync(["--dir", missing, "--port", "0"], { from: "user" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
  });

  test("a port in use is a usage error (exit 2) naming the port", async () => {
    const other = createServer();
    await new Promise<void>((ok) => other.listen(0, "127.0.0.1", ok));
    const port = (other.address() as AddressInfo).port;
    try {
      const e = await startServer(dir, port).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect((e as UsageError).exitCode).toBe(2);
      expect((e as Error).message).toContain(`port ${port}`);
      expect((e as Error).message).toMatch(/taken/);
    } finally {
      await new Promise<void>((ok) => other.close(() => ok()));
    }
  });

  test("the command prints the address, serves until SIGINT, and rejects a bad --port", async () => {
    const out = capture();
    const running = serveCommand(out).exitOverride().parseAsync(["--dir", dir, "--port", "0"], { from: "user" });
    for (let i = 0; i < 100 && !out.text().includes("http://"); i++) await new Promise((r) => setTimeout(r, 20));
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out.text())?.[0];
    expect(url).toBeDefined();
    expect((await fetch(url!)).status).toBe(200);
    process.emit("SIGINT");
    await running;
    await expect(fetch(url!)).rejects.toThrow();

    const bad = await serveCommand(capture())
      .exitOverride()
      .parseAsync(["--port", "http"], { from: "user" })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(UsageError);
    expect((bad as Error).message).toMatch(/--port/);
  });

  test("the default root is the repository's dist/web when run from source", () => {
    expect(defaultWebRoot().replaceAll("\\", "/")).toMatch(/\/dist\/web$/);
  });
});
