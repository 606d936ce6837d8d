// SPDX-License-Identifier: MIT
// The run view at parity with `memvirt run`, in Chromium: the summary paragraph, the exits by
// reason and the overhead against bare metal are the CLI's (sim/report_summary.ts) for the
// engine's report of the same scenario and seed; a compare with the short key `mmu` runs both
// variants, draws them in distinct colours with a legend in the page, the PNG and the SVG,
// and its cost table fits its column.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exitsByReason, summary } from "../../src/sim/report_summary.js";
import { COST_EVENTS } from "../../src/sim/cost.js";
import { loadScenario } from "../../src/sim/scenario_load.js";
import { closeHarness, engineReport, type Harness, haveChromium, openHarness, ROOT, snap } from "./browser_helpers.js";

if (!haveChromium)
  console.warn("test/web/browser_run.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).");

const FILE = "examples/fault-in.yaml";

// Browser globals used inside page.evaluate() callbacks, which run in the page (this typecheck has no DOM lib).
interface Canvas2d {
  drawImage(image: unknown, x: number, y: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}
declare const document: { createElement(tag: "canvas"): { width: number; height: number; getContext(kind: "2d"): Canvas2d | null } };
declare const Image: new () => { src: string; width: number; height: number; decode(): Promise<void> };
declare function getComputedStyle(e: unknown): { borderColor: string };

describe.skipIf(!haveChromium)("run view at parity with the CLI", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-run");
  }, 120_000);
  afterAll(() => closeHarness(h));

  test("summary paragraph, exits by reason and overhead are the CLI's for the same report", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#run`);
    await page.reload();
    await page.selectOption("select >> nth=0", FILE);
    await page.click("[data-testid=run-button]");
    const text = readFileSync(join(ROOT, FILE), "utf8");
    const want = engineReport(FILE, text);
    want.scenario = FILE;
    const scenario = loadScenario(text, FILE, { costEvents: COST_EVENTS.map((e) => e.name) });
    await page.waitForSelector("[data-testid=results]", { timeout: 60_000 });
    expect(await page.textContent("[data-testid=summary-text-0]")).toBe(summary(want, scenario));
    const rows = await page.$$eval("[data-testid=exits-0-0] tbody tr", (trs) =>
      trs.map((tr) => [tr.getAttribute("data-reason"), Number(tr.getAttribute("data-value"))]),
    );
    expect(rows).toEqual(exitsByReason(want.vms[0]!).map((x) => [x.reason, x.total]));
    expect(rows.length).toBeGreaterThan(0);
    expect(want.overheadRatio).not.toBeNull();
    expect(await page.textContent("[data-testid=overhead-0]")).toContain(`${(want.overheadRatio! + 1).toFixed(2)} times as long`);
    expect(await page.textContent("[data-testid=overhead-0]")).toContain(`natively ${want.native!.cycles.toLocaleString("en-US")}`);
    await snap(page, "run-summary", true);
  }, 90_000);

  test("compare mmu=ept vs npt: short key, distinct colours and a legend in page, PNG and SVG; the cost table fits", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#run`);
    await page.reload();
    await page.selectOption("select >> nth=0", FILE);
    await page.check("text=Compare two variants side by side");
    expect(await page.inputValue("fieldset input.mono >> nth=0")).toBe("mmu");
    await page.click("[data-testid=run-button]");
    await page.waitForSelector("[data-testid=results]", { timeout: 60_000 });
    const results = (await page.textContent("[data-testid=results]")) ?? "";
    expect(results).toContain("mmu=ept");
    expect(results).toContain("mmu=npt");
    // The summary of the NPT variant speaks of NPFs: the override reached every VM.
    expect(await page.textContent("[data-testid=summary-text-1]")).toContain("nested page fault (NPF)");
    const legend = await page.$$eval("[data-testid=chart-memory] .u-legend .u-series", (ss) =>
      ss.map((s) => [s.textContent?.trim() ?? "", getComputedStyle(s.querySelector(".u-marker")!).borderColor]),
    );
    const colours = new Set(legend.filter(([l]) => l.includes("(mmu=")).map(([l, c]) => `${l.includes("npt") ? "npt" : "ept"} ${c}`));
    expect([...colours].sort()).toEqual(["ept rgb(0, 114, 178)", "npt rgb(213, 94, 0)"]);

    const [svg] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=chart-memory] >> text=Save SVG")]);
    expect(svg.suggestedFilename()).toBe("memvirt-memory.svg");
    const svgText = readFileSync((await svg.path())!, "utf8");
    expect(svgText.startsWith("<svg")).toBe(true);
    expect(svgText).toContain('stroke="#0072b2"');
    expect(svgText).toContain('stroke="#d55e00"');
    expect(svgText).toContain("QEMU RSS (mmu=npt)");
    expect((svgText.match(/<path /g) ?? []).length).toBe(6);

    const [png] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=chart-memory] >> text=Save PNG")]);
    const b64 = readFileSync((await png.path())!).toString("base64");
    // The PNG's legend is in the variants' colours, not black: vermillion pixels below the plot.
    const vermillion = await page.evaluate(async (data) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const g = c.getContext("2d")!;
      g.drawImage(img, 0, 0);
      const y0 = img.height - 60;
      const d = g.getImageData(0, y0, img.width, 60).data;
      let hits = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]! - 213) < 8 && Math.abs(d[i + 1]! - 94) < 8 && d[i + 2]! < 10) hits++;
      return hits;
    }, b64);
    expect(vermillion).toBeGreaterThan(20);

    await snap(page, "run-compare", true);
    const overflow = await page.$eval("[data-testid=cost]", (t) => t.scrollWidth - t.parentElement!.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    expect(h.errors).toEqual([]);
  }, 90_000);
});
