// SPDX-License-Identifier: MIT
// Shared set-up of the visualizer's browser tests: build the page with Vite (or reuse
// MEMVIRT_WEB_DIST), serve it with `memvirt serve`'s server, open Debian's Chromium, collect
// page errors, and save screenshots under test-artifacts/.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { type ServeHandle, startServer } from "../../src/cli/serve_cmd.js";
import { COST_EVENTS } from "../../src/sim/cost.js";
import { Engine } from "../../src/sim/engine.js";
import type { Report } from "../../src/sim/report.js";
import { loadScenario } from "../../src/sim/scenario_load.js";

export const CHROMIUM = "/usr/bin/chromium";
export const ROOT = resolve(import.meta.dirname, "../..");
export const ARTIFACTS = join(ROOT, "test-artifacts");
export const haveChromium = existsSync(CHROMIUM);

const LAUNCH_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

export interface Harness {
  server: ServeHandle;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  errors: string[];
  dist: string;
}

/** Builds (once per file) and serves the page, and opens a 1280x800 page in Chromium. */
export async function openHarness(outDir: string): Promise<Harness> {
  let dist = process.env.MEMVIRT_WEB_DIST ? resolve(ROOT, process.env.MEMVIRT_WEB_DIST) : "";
  if (!dist) {
    dist = join(ARTIFACTS, outDir);
    const vite = join(ROOT, "node_modules", "vite", "bin", "vite.js");
    const b = spawnSync(process.execPath, [vite, "build", "--outDir", dist, "--emptyOutDir", "--logLevel", "warn"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, NODE_ENV: "production" },
    });
    if (b.status !== 0) throw new Error(`vite build failed:\n${b.stdout}\n${b.stderr}`);
  }
  const server = await startServer(dist, 0);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { server, browser, context, page, errors, dist };
}

export async function closeHarness(h: Harness | undefined): Promise<void> {
  await h?.browser.close();
  await h?.server.close();
}

/** Saves a screenshot to test-artifacts/web-<name>.png. */
export async function snap(page: Page, name: string, fullPage = false): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `web-${name}.png`), fullPage });
}

/** The engine's report for an example, as the page's worker makes it (`memvirt run --json`). */
export function engineReport(file: string, text: string, overrides?: Record<string, unknown>): Report {
  const scenario = loadScenario(text, file, { costEvents: COST_EVENTS.map((e) => e.name), ...(overrides ? { overrides } : {}) });
  return new Engine(scenario, {}).run();
}
