// SPDX-License-Identifier: MIT
// The web visualizer in a real Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): the page is built with Vite, served by `memvirt serve`'s server, and
// checked against the library: the run view's counters and exported report equal the
// report the engine gives for the same scenario and seed; the translate view steps through
// a cold 4+4 EPT walk to 25; the story plays to the first swap-out with the notifier step
// narrated and its guest and EPT trees drawn; an invalid scenario shows the schema's error and does not run. Screenshots of
// each view at 1280x800 go to test-artifacts/ and are checked for a non-blank page.
//
// MEMVIRT_WEB_DIST=dist/web reuses a page built by `npm run build` instead of building one.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ServeHandle, startServer } from "../../src/cli/serve_cmd.js";
import { COST_EVENTS } from "../../src/sim/cost.js";
import { Engine } from "../../src/sim/engine.js";
import type { Report } from "../../src/sim/report.js";
import { DEFAULT_SCENARIO_YAML, loadScenario } from "../../src/sim/scenario_load.js";
import { runTranslate, DEFAULT_TRANSLATE } from "../../src/sim/translate.js";

// Browser globals used inside page.evaluate() callbacks, which run in the page (this typecheck has no DOM lib).
interface Canvas2d {
  drawImage(image: unknown, x: number, y: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}
declare const document: {
  documentElement: { scrollWidth: number; clientWidth: number };
  createElement(tag: "canvas"): { width: number; height: number; getContext(kind: "2d"): Canvas2d | null };
};
declare const Image: new () => { src: string; width: number; height: number; decode(): Promise<void> };
declare const window: { scrollTo(x: number, y: number): void };
declare const location: { hash: string; href: string };

const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(import.meta.dirname, "../..");
const ARTIFACTS = join(ROOT, "test-artifacts");
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    "test/web/browser.test.ts: SKIPPED: /usr/bin/chromium is absent. Install Debian's chromium (apt-get install -y --no-install-recommends chromium) to run the browser tests; CI does.",
  );
}

const LAUNCH_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** The report's counters under the keys the page puts on its rows (data-counter). */
function flatCounters(r: Report): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.host.vmstat)) out[`host.${k}`] = v;
  r.vms.forEach((vm, i) => {
    for (const [k, v] of Object.entries(vm.stats)) out[`vm${i}.kvm.${k}`] = v;
    for (const [k, v] of Object.entries(vm.guest)) out[`vm${i}.guest.${k}`] = v;
    for (const [k, v] of Object.entries(vm.qemu)) out[`vm${i}.qemu.${k}`] = v;
    for (const [k, v] of Object.entries(vm.hw)) if (typeof v === "number") out[`vm${i}.hw.${k}`] = v;
  });
  out["check.dataErrors"] = r.check.dataErrors;
  out["check.invariantViolations"] = r.check.invariantViolations;
  return out;
}

/** Saves a 1280x800 screenshot and checks that it is not blank: many pixels differ from the background. */
async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `web-${name}.png`);
  const png = await page.screenshot({ path });
  expect(png.length).toBeGreaterThan(20_000);
  const stats = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext("2d")!;
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    const colors = new Set<number>();
    for (let i = 0; i < d.length; i += 4 * 7) {
      const v = (d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!;
      if (v !== 0xffffff) ink++;
      if (colors.size < 500) colors.add(v);
    }
    return { width: c.width, height: c.height, ink: ink / (d.length / (4 * 7)), colors: colors.size };
  }, png.toString("base64"));
  expect(stats.width).toBe(1280);
  expect(stats.height).toBe(800);
  expect(stats.ink).toBeGreaterThan(0.05);
  expect(stats.colors).toBeGreaterThan(20);
}

describe.skipIf(!haveChromium)("web visualizer in Chromium", () => {
  let server: ServeHandle;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const requests: string[] = [];

  beforeAll(async () => {
    let dist = process.env.MEMVIRT_WEB_DIST ? resolve(ROOT, process.env.MEMVIRT_WEB_DIST) : "";
    if (!dist) {
      dist = join(ARTIFACTS, "web-dist");
      const vite = join(ROOT, "node_modules", "vite", "bin", "vite.js");
      const b = spawnSync(process.execPath, [vite, "build", "--outDir", dist, "--emptyOutDir", "--logLevel", "warn"], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, NODE_ENV: "production" },
      });
      if (b.status !== 0) throw new Error(`vite build failed:\n${b.stdout}\n${b.stderr}`);
    }
    server = await startServer(dist, 0);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => requests.push(r.url()));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  test("run view: the counters shown and the exported report equal the engine's report for the same scenario and seed", async () => {
    await page.goto(`${server.url}#run`);
    await page.click("[data-testid=run-button]");
    await page.waitForSelector("[data-testid=run-progress]", { timeout: 10_000 });
    // While the browser runs the scenario, run it here with the library, as `memvirt run --json` does.
    const scenario = loadScenario(DEFAULT_SCENARIO_YAML, "built-in", { costEvents: COST_EVENTS.map((e) => e.name) });
    const expected = new Engine(scenario, {}).run();
    expected.scenario = "built-in";
    await page.waitForSelector("[data-testid=results]", { timeout: 60_000 });
    expect(await page.getAttribute("[data-testid=run-status]", "data-state")).toBe("done");

    const shown = await page.$$eval("tr[data-counter]", (rows) =>
      Object.fromEntries(rows.map((r) => [r.getAttribute("data-counter")!, Number(r.getAttribute("data-value"))])),
    );
    const want = flatCounters(expected);
    expect(Object.keys(shown).length).toBeGreaterThan(100);
    expect(shown).toEqual(want);
    // Every counter name carries its description as a tooltip.
    const titles = await page.$$eval("tr[data-counter] abbr", (as) => as.map((a) => a.getAttribute("title") ?? ""));
    expect(titles.filter((t) => t.length < 10)).toEqual([]);
    expect(await page.textContent("[data-testid=cost-total-0]")).toBe(expected.cost.cycles.toLocaleString("en-US"));
    expect(await page.locator("[data-testid=chart-memory] canvas").count()).toBeGreaterThan(0);
    expect(await page.locator("[data-testid=chart-events] canvas").count()).toBeGreaterThan(0);

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("text=Export JSON")]);
    const exported = JSON.parse(readFileSync((await download.path())!, "utf8")) as Report;
    expect(exported).toEqual(JSON.parse(JSON.stringify(expected)));

    const [png] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=chart-memory] >> text=Save PNG")]);
    const bytes = readFileSync((await png.path())!);
    expect(png.suggestedFilename()).toBe("memvirt-memory.png");
    expect(bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
    expect(bytes.length).toBeGreaterThan(10_000);

    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, "run");
  }, 90_000);

  test("translate view: a cold 4+4 EPT walk steps to 25 references, and the warm accesses match runTranslate", async () => {
    await page.goto(`${server.url}#translate&mode=ept&levels=4&gp=4k&hp=4k`);
    await page.reload();
    await page.waitForSelector("[data-testid=walk-step]");
    expect(await page.textContent("[data-testid=walk-pos]")).toContain("step 0 of 25");
    for (let i = 0; i < 25; i++) await page.click("[data-testid=walk-step]");
    await page.click("[data-testid=walk-step]"); // one more: stays at the end
    expect(await page.textContent("[data-testid=ref-total]")).toBe("25");
    expect(await page.textContent("[data-testid=ref-count]")).toBe("25");
    expect(await page.locator("table.walk td[data-filled]").count()).toBe(25);
    expect(await page.locator("table.walk td.nested-table").count()).toBe(20);
    expect(await page.locator("table.walk td.guest-table").count()).toBe(4);
    const warm = runTranslate({ ...DEFAULT_TRANSLATE, accesses: 3, caches: true });
    const rows = await page.$$eval("[data-testid=warm-table] tbody tr", (trs) =>
      trs.map((tr) => Number(tr.querySelectorAll("td")[1]!.textContent)),
    );
    expect(rows).toEqual(warm.perAccess.map((a) => a.total));
    await screenshot(page, "translate");

    // Keyboard: Home empties the grid, End fills it; 5-level tables give 36.
    await page.focus("[data-testid=walk-step]");
    await page.keyboard.press("Home");
    expect(await page.textContent("[data-testid=ref-count]")).toBe("0");
    await page.selectOption("select >> nth=1", "5");
    await page.waitForSelector("text=step 0 of 36");
    await page.focus("[data-testid=walk-step]");
    await page.keyboard.press("End");
    expect(await page.textContent("[data-testid=ref-total]")).toBe("36");
  }, 60_000);

  test("story view: plays to the first swap-out, with the mmu_notifier and KVM's zap narrated before it", async () => {
    await page.goto(`${server.url}#story`);
    await page.reload();
    const chapter = "[data-testid=story-chapter] option[data-reason^='first host.swap_alloc']";
    // The chapter, or the run's failure (then its message, not a bare timeout).
    await page.waitForSelector(`${chapter}, [data-testid=story-status][data-state=error]`, { state: "attached", timeout: 45_000 });
    const status = (await page.textContent("[data-testid=story-status]")) ?? "";
    expect(await page.getAttribute("[data-testid=story-status]", "data-state"), status).not.toBe("error");
    await page.selectOption("[data-testid=story-chapter]", await page.$eval(chapter, (o) => o.getAttribute("value")!));
    await page.selectOption("[data-testid=story-speed]", "25");
    await page.click("[data-testid=story-play]");
    await page.waitForSelector("[data-testid=story-log] li[data-kind='host.swap_out']", { timeout: 20_000 });
    await page.click("[data-testid=story-play]");
    const log = page.locator("[data-testid=story-log]");
    const start = log.locator("li[data-kind='host.notifier.start']");
    const zap = log.locator("li[data-kind='kvm.notifier_zap']");
    expect(await start.count()).toBeGreaterThan(0);
    expect(await start.first().textContent()).toContain("mmu_notifier_invalidate_range_start()");
    expect(await zap.first().textContent()).toContain("kvm_unmap_gfn_range()");
    // Back to the chapter's start, then step to KVM's zap: the narration says the guest never hears about it.
    // (The player keeps to its rate on the clock, so it may be some way past the swap-out when paused.)
    await page.selectOption("[data-testid=story-chapter]", await page.$eval(chapter, (o) => o.getAttribute("value")!));
    await page.focus("[data-testid=story-step]");
    for (let i = 0; i < 60; i++) {
      if ((await page.getAttribute("[data-testid=story-now]", "data-kind")) === "kvm.notifier_zap") break;
      await page.keyboard.press("ArrowRight");
    }
    expect(await page.getAttribute("[data-testid=story-now]", "data-kind")).toBe("kvm.notifier_zap");
    expect(await page.textContent("[data-testid=story-correction]")).toContain("The guest never hears about the invalidation");
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("ArrowLeft");
    // Back at the notifier's start: the correction names the removed callbacks.
    for (let i = 0; i < 4 && (await page.getAttribute("[data-testid=story-now]", "data-kind")) !== "host.notifier.start"; i++) {
      await page.keyboard.press("ArrowLeft");
    }
    expect(await page.textContent("[data-testid=story-correction]")).toContain("change_pte()");
    expect(await page.textContent("[data-testid=story-panels]")).toContain("Swap device");
    // The trees follow the page being evicted (story_cursor.ts): KVM's EPT path and QEMU's own, each with its levels.
    expect(Number(await page.getAttribute("[data-testid=tree-kvm]", "data-levels"))).toBeGreaterThan(0);
    expect(Number(await page.getAttribute("[data-testid=tree-host]", "data-levels"))).toBe(4);
    expect(await page.textContent("[data-testid=tree-host]")).toContain("PML4E");
    expect(await page.textContent("[data-testid=tree-kvm]")).toContain("EPT PML4E");
    // The tree's summary is a keyboard control: Enter folds the tree away.
    await page.focus("[data-testid=tree-kvm] summary");
    await page.keyboard.press("Enter");
    expect(await page.getAttribute("[data-testid=tree-kvm]", "open")).toBeNull();
    await page.keyboard.press("Enter");
    await screenshot(page, "story");
  }, 60_000);

  test("run view: an invalid scenario shows the schema's error with its line and does not run", async () => {
    await page.goto(`${server.url}#run`);
    await page.reload();
    const bad = DEFAULT_SCENARIO_YAML.replace("ram: 512MiB", "ram: lots").replace("mmu: ept", "mmu: eptt");
    await page.fill("textarea", bad);
    await page.waitForSelector("[data-testid=scenario-issues]");
    const issues = await page.textContent("[data-testid=scenario-issues]");
    expect(issues).toContain("line 9");
    expect(issues).toContain("vms[0].ram");
    expect(issues).toContain("vms[0].mmu");
    await page.click("[data-testid=run-button]");
    expect(await page.getAttribute("[data-testid=run-status]", "data-state")).toBe("invalid");
    await page.waitForTimeout(300);
    expect(await page.locator("[data-testid=run-progress]").count()).toBe(0);
    expect(await page.locator("[data-testid=results]").count()).toBe(0);
    await screenshot(page, "run-invalid");
  }, 30_000);

  test("run view: two variants side by side (vms[0].mmu ept vs npt) match the engine; a run can be cancelled", async () => {
    await page.goto(`${server.url}#run`);
    await page.reload();
    await page.selectOption("select >> nth=0", "examples/fault-in.yaml");
    await page.check("text=Compare two variants side by side");
    await page.click("[data-testid=run-button]");
    const text = readFileSync(join(ROOT, "examples", "fault-in.yaml"), "utf8");
    const costEvents = COST_EVENTS.map((e) => e.name);
    const want = ["ept", "npt"].map((mmu) =>
      flatCounters(new Engine(loadScenario(text, "examples/fault-in.yaml", { costEvents, overrides: { "vms[0].mmu": mmu } })).run()),
    );
    await page.waitForSelector("[data-testid=results]", { timeout: 30_000 });
    const shown = await page.$$eval("tr[data-counter]", (rows) =>
      rows.map((r) => [
        r.getAttribute("data-counter")!,
        ...[...r.querySelectorAll("td[data-value]")].map((td) => Number(td.getAttribute("data-value"))),
      ]),
    );
    expect(shown.length).toBe(Object.keys(want[0]!).length);
    for (const [key, a, b] of shown) {
      expect([key, a], String(key)).toEqual([key, want[0]![key as string]]);
      expect([key, b], String(key)).toEqual([key, want[1]![key as string]]);
    }
    expect(await page.textContent("[data-testid=results]")).toContain("mmu=npt"); // the short key, as --compare mmu=ept,npt

    await page.selectOption("select >> nth=0", "built-in");
    await page.uncheck("text=Compare two variants side by side");
    await page.click("[data-testid=run-button]");
    await page.waitForSelector("[data-testid=run-progress]");
    await page.click("[data-testid=cancel-button]");
    expect(await page.getAttribute("[data-testid=run-status]", "data-state")).toBe("cancelled");
    expect(await page.locator("[data-testid=results]").count()).toBe(0);
    expect(await page.locator("[data-testid=run-progress]").count()).toBe(0);
  }, 60_000);

  test("the link holds the scenario and the seed; every view fits a phone-width screen", async () => {
    await page.goto(`${server.url}#run`);
    await page.reload();
    const text = DEFAULT_SCENARIO_YAML.replace("seed: 1 ", "seed: 3 ");
    await page.fill("textarea", text);
    await page.fill("input[inputmode=numeric]", "7");
    await page.waitForFunction(() => location.hash.includes("seed=7") && location.hash.includes("s="));
    const link = await page.evaluate(() => location.href);
    const other = await browser.newPage();
    await other.goto(link);
    await other.waitForSelector("textarea");
    expect(await other.inputValue("textarea")).toBe(text);
    expect(await other.inputValue("input[inputmode=numeric]")).toBe("7");
    await other.close();

    await page.setViewportSize({ width: 390, height: 844 });
    for (const view of ["translate", "run", "story"]) {
      await page.click(`#tab-${view}`);
      await page.waitForTimeout(100);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${view} view scrolls sideways at 390 px`).toBeLessThanOrEqual(0);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(errors).toEqual([]);
    // Offline: every request the page made went to the server it came from (or stayed in the page: blob, data).
    expect(requests.filter((u) => !u.startsWith(server.url) && !/^(blob|data):/.test(u))).toEqual([]);
  }, 30_000);
});
