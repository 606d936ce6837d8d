// SPDX-License-Identifier: MIT
// The page that explains itself, in Chromium: with no view in the link the start page shows,
// and its three cards open the walk, the story and the compare in their starting state;
// `#glossary/rmap` opens that entry; a term in a panel opens its entry and Back returns;
// under shadow paging the translate intro says no "EPT"; nothing scrolls sideways at 390 px.

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeHarness, type Harness, haveChromium, openHarness, snap } from "./browser_helpers.js";

if (!haveChromium)
  console.warn(
    "test/web/browser_explain.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).",
  );

declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };
declare const location: { hash: string };

describe.skipIf(!haveChromium)("start page and glossary", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-explain");
  }, 120_000);
  afterAll(() => closeHarness(h));

  const selected = () => h.page.getAttribute("[role=tab][aria-selected=true]", "id");
  const hash = () => h.page.evaluate(() => location.hash);

  test("no view in the link: the start page; its three cards open the views in their starting state", async () => {
    const { page, server } = h;
    await page.goto(server.url);
    await page.waitForSelector("[data-testid=landing]");
    expect(await selected()).toBe("tab-home");
    const text = await page.textContent("[data-testid=landing]");
    for (const w of ["gva", "gpa", "hva", "hpa", "Translate", "Run", "Story"]) expect(text).toContain(w);
    await snap(page, "landing", true);

    await page.click("[data-testid=card-walk]");
    await page.waitForSelector("text=step 0 of 25");
    expect(await selected()).toBe("tab-translate");
    expect(await page.inputValue("#panel-translate select >> nth=0")).toBe("ept");
    await page.click("[data-testid=walk-step]");
    expect(await page.textContent("[data-testid=ref-count]")).toBe("1");

    await page.goBack();
    await page.waitForSelector("[data-testid=landing]", { state: "visible" });
    expect(await selected()).toBe("tab-home");
    await page.click("[data-testid=card-compare]");
    await page.waitForSelector("[data-testid=run-button]");
    expect(await selected()).toBe("tab-run");
    expect(await page.inputValue("#panel-run select >> nth=0")).toBe("examples/fault-in.yaml");
    const cmp = page.locator("#panel-run fieldset input[type=text]");
    expect([await cmp.nth(0).inputValue(), await cmp.nth(1).inputValue(), await cmp.nth(2).inputValue()]).toEqual(["mmu", "ept", "shadow"]);
    expect(await page.isChecked("#panel-run fieldset legend input[type=checkbox]")).toBe(true);

    await page.goBack();
    await page.waitForSelector("[data-testid=landing]", { state: "visible" });
    await page.click("[data-testid=card-story]");
    await page.waitForSelector("[data-testid=story-status]");
    expect(await selected()).toBe("tab-story");
    expect(await page.textContent("#panel-story h2")).toContain("a guest bigger than its host");
    expect(await hash()).toMatch(/^#story/);
    expect(h.errors).toEqual([]);
  }, 90_000);

  test("#glossary/rmap opens that entry; a term in a panel opens its entry and Back returns to the walk", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#glossary/rmap`);
    await page.reload();
    await page.waitForSelector("[data-entry=rmap].current");
    expect(await selected()).toBe("tab-glossary");
    const entry = await page.textContent("[data-entry=rmap]");
    expect(entry).toContain("reverse map");
    expect(entry).toContain("mm/rmap.c");
    expect(await page.evaluate("document.activeElement && document.activeElement.getAttribute('data-entry')")).toBe("rmap");
    await snap(page, "glossary");

    // A link to a walk step (a hash change: a reload now would race the view's own rewrite of the hash).
    await page.goto(`${server.url}#translate&mode=ept&levels=4&gp=4k&hp=4k&step=3`);
    await page.waitForSelector("text=step 3 of 25");
    await snap(page, "translate-terms");
    await page.click("#panel-translate th a.term[data-term=gpa]");
    await page.waitForSelector("[data-entry=gpa].current");
    expect(await hash()).toBe("#glossary/gpa");
    expect(await page.textContent("[data-entry=gpa]")).toContain("guest-physical address");
    await page.goBack();
    await page.waitForFunction("location.hash.startsWith('#translate')");
    expect(await selected()).toBe("tab-translate");
    expect(await page.textContent("[data-testid=walk-pos]")).toBe("step 3 of 25");

    // The help overlay links the glossary too.
    await page.keyboard.press("?");
    await page.click("[data-testid=help-glossary] a");
    await page.waitForSelector("[data-testid=glossary]", { state: "visible" });
    expect(await page.locator("[data-testid=help-overlay]").count()).toBe(0);
    expect(h.errors).toEqual([]);
  }, 60_000);

  test("under shadow paging the translate intro says no EPT; under NPT it says NPT", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#translate&mode=shadow`);
    await page.reload();
    await page.waitForSelector("[data-testid=shadow-note]");
    const intro = await page.textContent("#panel-translate p.lead");
    expect(intro).toContain("shadow tables");
    expect(intro).not.toMatch(/EPT|NPT/);
    await page.goto(`${server.url}#translate&mode=npt`);
    await page.reload();
    await page.waitForSelector("text=step 0 of 25");
    const npt = await page.textContent("#panel-translate p.lead");
    expect(npt).toContain("NPT tables");
    expect(npt).not.toContain("EPT");
  }, 60_000);

  test("start page and glossary fit 390 px, light and dark", async () => {
    const { page, server } = h;
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [name, url] of [
        ["landing", server.url],
        ["glossary", `${server.url}#glossary/spte`],
      ] as const) {
        await page.setViewportSize({ width: 1280, height: 800 });
        await page.goto(url);
        await page.reload();
        await page.waitForSelector(`[data-testid=${name}]`);
        if (scheme === "dark") await snap(page, `${name}-dark`, name === "landing");
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(150);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `${name} scrolls sideways at 390 px (${scheme})`).toBeLessThanOrEqual(0);
        await snap(page, `phone-${name}-${scheme}`, name === "landing");
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: "light" });
    expect(h.errors).toEqual([]);
  }, 60_000);
});
