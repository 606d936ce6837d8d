// SPDX-License-Identifier: MIT
// The page that explains itself, in Chromium: shortcuts work without focusing a button and
// `?` opens the keyboard help from any view; the link holds the walk step and the story
// position and restores them; Back and Forward move between views; the dark theme follows
// prefers-color-scheme and the toggle; nothing scrolls sideways at 390 px, help included.

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeHarness, type Harness, haveChromium, openHarness, snap } from "./browser_helpers.js";

if (!haveChromium)
  console.warn("test/web/browser_nav.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).");

declare const document: { documentElement: { scrollWidth: number; clientWidth: number }; body: unknown };
declare function getComputedStyle(e: unknown): { backgroundColor: string };
declare const location: { href: string; hash: string };

describe.skipIf(!haveChromium)("navigation, keys, theme, phone width", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-nav");
  }, 120_000);
  afterAll(() => closeHarness(h));

  test("shortcuts work with nothing focused; ? opens the help from every view and Esc closes it", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#translate`);
    await page.reload();
    await page.waitForSelector("[data-testid=walk-step]");
    await page.mouse.click(5, 790); // on the page background: no control has focus
    for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowRight");
    expect(await page.textContent("[data-testid=ref-count]")).toBe("3");
    for (const key of ["1", "2", "3"]) {
      await page.keyboard.press(key);
      await page.mouse.click(5, 790);
      await page.keyboard.press("?");
      await page.waitForSelector("[data-testid=help-overlay]");
      expect(await page.textContent("[data-testid=help-overlay]")).toContain("next / previous chapter");
      if (key === "3") await snap(page, "help");
      await page.keyboard.press("Escape");
      expect(await page.locator("[data-testid=help-overlay]").count()).toBe(0);
    }
    // An Escape right after the ?, before the next frame, closes it too (the key handler once saw the help still closed).
    await page.keyboard.press("?");
    await page.keyboard.press("Escape");
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
    expect(await page.locator("[data-testid=help-overlay]").count()).toBe(0);
  }, 60_000);

  test("the link restores the walk step and the story position; Back and Forward move between views", async () => {
    const { page, server, context } = h;
    await page.goto(`${server.url}#translate&mode=ept&levels=4&gp=4k&hp=4k`);
    await page.reload();
    await page.waitForSelector("[data-testid=walk-step]");
    for (let i = 0; i < 7; i++) await page.keyboard.press("ArrowRight");
    await page.waitForFunction("location.hash.includes('step=7')");
    const other = await context.newPage();
    await other.goto(await page.evaluate(() => location.href));
    await other.waitForSelector("text=step 7 of 25");
    expect(await other.textContent("[data-testid=ref-count]")).toBe("7");

    await page.goto(`${server.url}#story&sc=${encodeURIComponent("examples/fault-in.yaml")}`);
    await page.reload();
    await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 60_000 });
    await page.mouse.click(5, 790);
    await page.keyboard.press("End");
    for (let i = 0; i < 30; i++) await page.keyboard.press("ArrowLeft");
    const at = await page.getAttribute("[data-testid=story-now]", "data-pos");
    expect(Number(at)).toBeGreaterThan(100);
    await page.waitForFunction(`location.hash.includes("pos=${at}")`);
    const link = await page.evaluate(() => location.href);
    const now = await page.textContent("[data-testid=story-now]");
    await other.goto(link);
    await other.reload();
    await other.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 60_000 });
    expect(await other.textContent("[data-testid=story-now]")).toBe(now);
    await other.close();

    // Back and Forward: each view chosen is a history entry.
    await page.goto(`${server.url}#translate`);
    await page.reload();
    await page.click("#tab-run");
    await page.click("#tab-story");
    const selected = () => page.getAttribute("[role=tab][aria-selected=true]", "id");
    expect(await selected()).toBe("tab-story");
    await page.goBack();
    await page.waitForFunction("location.hash.startsWith('#run')");
    expect(await selected()).toBe("tab-run");
    await page.goBack();
    await page.waitForFunction("location.hash.startsWith('#translate')");
    expect(await selected()).toBe("tab-translate");
    await page.goForward();
    await page.waitForFunction("location.hash.startsWith('#run')");
    expect(await selected()).toBe("tab-run");
  }, 150_000);

  test("the story plays at the speed it says: 100 items/s for 2 s is about 200 items", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#story&sc=${encodeURIComponent("examples/fault-in.yaml")}`);
    await page.reload();
    await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 60_000 });
    await page.selectOption("[data-testid=story-speed]", "100");
    await page.mouse.click(5, 790);
    const t0 = Date.now();
    await page.keyboard.press("p");
    await page.waitForTimeout(2000);
    await page.keyboard.press("p");
    const secs = (Date.now() - t0) / 1000;
    await page.waitForTimeout(100);
    const pos = Number(/pos=(\d+)/.exec(await page.evaluate(() => location.hash))?.[1] ?? -1);
    expect(pos / secs).toBeGreaterThan(80);
    expect(pos / secs).toBeLessThan(110);
  }, 90_000);

  test("a link followed while the story moves is not written over before the app handles it", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#story&sc=${encodeURIComponent("examples/fault-in.yaml")}`);
    await page.reload();
    await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 60_000 });
    await page.mouse.click(5, 790);
    await page.keyboard.press("ArrowRight");
    await page.waitForFunction("location.hash.includes('pos=')");
    // The URL changes, and its hashchange (a queued task) has not run yet: here it never does, until dispatched below.
    const link = `#story&sc=${encodeURIComponent("examples/pagetable-heavy.yaml")}`;
    await page.evaluate(`history.replaceState(null, "", ${JSON.stringify(link)})`);
    for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowRight");
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
    expect(await page.evaluate(() => location.hash)).toBe(link);
    await page.evaluate('dispatchEvent(new HashChangeEvent("hashchange"))');
    await page.waitForSelector("text=Story: examples/pagetable-heavy.yaml");
    expect(await page.evaluate(() => location.hash)).toContain("pagetable-heavy");
  }, 90_000);

  test("dark theme from prefers-color-scheme and from the toggle; no sideways scroll at 390 px", async () => {
    const { page, server } = h;
    await page.emulateMedia({ colorScheme: "dark" });
    await page.goto(`${server.url}#translate`);
    await page.reload();
    await page.waitForSelector("[data-testid=walk-step]");
    const bg = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    // The theme applies in an effect after the click's render: poll rather than read once.
    const expectBg = (rgb: string) => expect.poll(bg, { timeout: 5000 }).toBe(rgb);
    await expectBg("rgb(22, 22, 22)");
    await snap(page, "translate-dark");
    await page.click("[data-testid=theme-toggle]"); // system -> dark
    await expect.poll(() => page.getAttribute("html", "data-theme")).toBe("dark");
    await page.click("[data-testid=theme-toggle]"); // dark -> light
    await expectBg("rgb(255, 255, 255)");
    await page.click("[data-testid=theme-toggle]"); // light -> system (dark here)
    await expect.poll(() => page.getAttribute("html", "data-theme")).toBeNull();
    await expectBg("rgb(22, 22, 22)");
    await page.emulateMedia({ colorScheme: "light" });
    await expectBg("rgb(255, 255, 255)");

    await page.setViewportSize({ width: 390, height: 844 });
    for (const view of ["translate", "run", "story"]) {
      await page.click(`#tab-${view}`);
      await page.waitForTimeout(150);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${view} view scrolls sideways at 390 px`).toBeLessThanOrEqual(0);
      await snap(page, `phone-${view}`);
    }
    await page.keyboard.press("?");
    await page.waitForSelector("[data-testid=help-overlay]");
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await page.keyboard.press("Escape");
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(h.errors).toEqual([]);
  }, 90_000);
});
