// SPDX-License-Identifier: MIT
// The visualizer under every MMU, in Chromium: under NPT and shadow paging no panel, chapter
// or narration says "EPT", and the story's final numbers equal the engine's report for the
// same scenario, MMU and seed; the shadow translate view shows the guest's entries as guest
// entries and the real hpa; an address error clears the walk; the trace-replay story runs;
// an invalid edit clears the run view's old results.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, runTranslate } from "../../src/sim/translate.js";
import { closeHarness, engineReport, type Harness, haveChromium, openHarness, ROOT, snap } from "./browser_helpers.js";

if (!haveChromium)
  console.warn("test/web/browser_mmu.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).");

describe.skipIf(!haveChromium)("visualizer under every MMU", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-mmu");
  }, 120_000);
  afterAll(() => closeHarness(h));

  for (const mmu of (process.env.MMU_ONLY ? [process.env.MMU_ONLY] : ["npt", "shadow"]) as ("npt" | "shadow")[]) {
    test(`story under ${mmu}: no "EPT" anywhere it narrates, and its final numbers are the engine's`, async () => {
      const { page, server } = h;
      const file = "examples/reclaim-swap.yaml";
      await page.goto(`${server.url}#story&sc=${encodeURIComponent(file)}&mmu=${mmu}`);
      await page.reload();
      const want = engineReport(file, readFileSync(join(ROOT, file), "utf8"), { "vms[0].mmu": mmu });
      await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 90_000 });
      await page.focus("[data-testid=story-step]");
      await page.keyboard.press("End");
      const value = async (id: string) => Number(await page.getAttribute(`[data-testid=${id}]`, "data-value"));
      expect(await value("story-exits")).toBe(want.vms[0]!.stats.exits);
      expect(await value("story-pswpout")).toBe(want.host.vmstat.pswpout);
      expect(await value("story-pswpin")).toBe(want.host.vmstat.pswpin);
      expect(await value("story-free")).toBe(want.host.vmstat.nr_free_pages);
      expect(await value("story-swap-used")).toBe(want.host.vmstat.total_swap_pages - want.host.vmstat.nr_swap_pages);
      const texts = [
        await page.textContent("[data-testid=story-panels]"),
        await page.textContent("[data-testid=story-chapter]"),
        await page.textContent("[data-testid=story-now]"),
      ];
      // Every chapter start, narrated: step to each and read the narration and the log.
      const chapters = await page.$$eval("[data-testid=story-chapter] option[value]:not([value=''])", (os) =>
        os.map((o) => o.getAttribute("value")!),
      );
      expect(chapters.length).toBeGreaterThan(10);
      for (const c of chapters.slice(0, 40)) {
        await page.selectOption("[data-testid=story-chapter]", c);
        await page.focus("[data-testid=story-step]");
        for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowRight");
        texts.push((await page.textContent("[data-testid=story-now]")) ?? "", (await page.textContent("[data-testid=story-log]")) ?? "");
      }
      const all = texts.join("\n");
      expect(all).toContain(mmu === "npt" ? "NPT" : "shadow");
      expect([...new Set(all.match(/.{0,60}\bEPT\b.{0,60}/g) ?? [])]).toEqual([]);
      if (mmu === "shadow") {
        expect(all).toContain("FNAME(page_fault)");
        expect(all).not.toMatch(/tdp_mmu/);
      }
      await snap(page, `story-${mmu}`);
    }, 150_000);
  }

  test("shadow translate: the guest's own entries as guest entries, the real hpa, the leaf spte; an address error clears the walk", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#translate&mode=shadow`);
    await page.reload();
    await page.waitForSelector("[data-testid=walk-step]");
    await page.focus("[data-testid=walk-step]");
    await page.keyboard.press("End");
    expect(await page.textContent("[data-testid=ref-total]")).toBe("5");
    const names = await page.$$eval("table.walk td[data-filled] .tname", (ts) => ts.map((t) => t.textContent));
    expect(names).toEqual(["guest PML4E", "guest PDPTE", "guest PDE", "guest PTE", "data access"]);
    // The data's hpa is the host frame behind its gpa (as under EPT), not the gpa.
    const ept = runTranslate({ ...DEFAULT_TRANSLATE, paging: "ept", hostPage: "4k", accesses: 1 });
    expect(ept.hpa).not.toBe(ept.gpa);
    expect(await page.textContent("table.walk td.data .bits")).toBe(`hpa ${ept.hpa}`);
    expect(await page.textContent("[data-testid=shadow-leaf]")).toContain(`hpa ${ept.hpa}`);
    expect(await page.textContent("table.walk")).not.toContain("shadow PML4E");
    await snap(page, "translate-shadow");

    await page.fill("input.mono", "0xnot-an-address");
    await page.press("input.mono", "Tab");
    await page.waitForSelector("[role=alert]");
    expect(await page.locator("table.walk").count()).toBe(0);
    expect(await page.locator("[data-testid=walk-step]").count()).toBe(0);
  }, 60_000);

  test("the trace-replay story runs on the bundled trace and can be played", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#story&sc=${encodeURIComponent("examples/trace-replay.yaml")}`);
    await page.reload();
    await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 120_000 });
    expect(await page.textContent("[data-testid=story-status]")).toMatch(/Run complete/);
    expect(await page.isEnabled("[data-testid=story-play]")).toBe(true);
    await snap(page, "story-trace");
  }, 150_000);

  test("run view: an invalid edit clears the results of the earlier text", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#run`);
    await page.reload();
    await page.selectOption("select >> nth=0", "examples/fault-in.yaml");
    await page.click("[data-testid=run-button]");
    await page.waitForSelector("[data-testid=results]", { timeout: 60_000 });
    const text = await page.inputValue("textarea");
    await page.fill("textarea", text.replace("mmu: ept", "mmu: eptt"));
    await page.waitForSelector("[data-testid=scenario-issues]");
    await page.waitForFunction("!document.querySelector('[data-testid=results]')");
    expect(await page.getAttribute("[data-testid=run-status]", "data-state")).toBe("invalid");
    expect(h.errors).toEqual([]);
  }, 90_000);
});
