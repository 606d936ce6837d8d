// SPDX-License-Identifier: MIT
// The story in plain chapters, in Chromium: the built-in story's seven chapters in order with
// their opening sentences; ] and [ and the buttons move between them; the scrubber seeks and
// the link carries the position (and restores it); "path N" says its title and opens the
// bundled docs/paths.md; the panels do not move between steps; under shadow paging
// (examples/pagetable-heavy.yaml) its own chapters appear and no "EPT" shows.

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeHarness, type Harness, haveChromium, openHarness, snap } from "./browser_helpers.js";

if (!haveChromium)
  console.warn(
    "test/web/browser_chapters.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).",
  );

declare const document: { querySelector(s: string): { getBoundingClientRect(): { top: number } } | null };
declare const location: { href: string; hash: string };
declare const scrollY: number;
declare function scrollTo(x: number, y: number): void;

const RAW_KIND = /\b(host|kvm|guest|hw|qemu)\.[a-z_]+/;
const BUILT_IN = [
  "Lazy allocation",
  "First touch and the 2D walk",
  "The fault-in path",
  "Pressure and aging",
  "Eviction and the notifier",
  "Re-fault and swap-in",
  "Steady state",
];

describe.skipIf(!haveChromium)("the story in plain chapters", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-chapters");
  }, 120_000);
  afterAll(() => closeHarness(h));

  const chips = () =>
    h.page.$$eval("[data-testid=story-chapters] button", (bs) => bs.map((b) => (b.textContent ?? "").replace(/^\d+\s*/, "")));
  const current = () => h.page.getAttribute("[data-testid=story-chapters] button[aria-current=step]", "data-chapter");
  const hashPos = async () => Number(/pos=(-?\d+)/.exec(await h.page.evaluate(() => location.hash))?.[1] ?? Number.NaN);

  test("the built-in story: seven chapters in order, keys and buttons between them, the scrubber and the link", async () => {
    const { page, server, context } = h;
    await page.goto(`${server.url}#story`);
    await page.reload();
    await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 150_000 });
    expect(await chips()).toEqual(BUILT_IN);
    const starts = (await page.$$eval("[data-testid=story-chapters] button", (bs) =>
      bs.map((b) => Number(b.getAttribute("data-start"))),
    )) as number[];
    expect(starts[0]).toBe(0);
    expect(starts.every((s, i) => i === 0 || s > starts[i - 1]!)).toBe(true);

    // No title names an event kind: chapter titles, their openings, the sections' titles.
    const titles = [
      ...(await page.$$eval("[data-testid=story-chapters] button", (bs) => bs.map((b) => `${b.textContent} ${b.getAttribute("title")}`))),
      ...(await page.$$eval("[data-testid=story-chapter] option, [data-testid=story-chapter] optgroup", (os) =>
        os.map((o) => o.getAttribute("label") ?? o.textContent ?? ""),
      )),
    ];
    expect(titles.length).toBeGreaterThan(60);
    for (const t of titles) expect(t).not.toMatch(RAW_KIND);

    // Each chapter's opening: its title, two sentences, screenshot.
    for (let k = 0; k < BUILT_IN.length; k++) {
      await page.click(`[data-testid=story-chapters] li:nth-child(${k + 1}) button`);
      await page.waitForFunction(`location.hash.includes("pos=${starts[k]}")`);
      const intro = (await page.textContent("[data-testid=chapter-intro]")) ?? "";
      expect(intro).toMatch(new RegExp(`^Chapter ${k + 1} of 7: `));
      expect(intro).not.toMatch(RAW_KIND);
      await snap(page, `chapter-${k + 1}`);
    }

    // ] and [ from anywhere; the buttons too.
    await page.mouse.click(5, 790);
    await page.keyboard.press("Home");
    await page.keyboard.press("]");
    await expect.poll(hashPos).toBe(starts[0]);
    await page.keyboard.press("]");
    await page.keyboard.press("]");
    await expect.poll(current).toBe("fault-in");
    await expect.poll(hashPos).toBe(starts[2]);
    await page.keyboard.press("[");
    await expect.poll(current).toBe("first-touch");
    await page.click("[data-testid=chapter-next]");
    await page.click("[data-testid=chapter-next]");
    await expect.poll(current).toBe("pressure");
    await page.click("[data-testid=chapter-prev]");
    await expect.poll(hashPos).toBe(starts[2]);

    // The scrubber seeks into the eviction chapter; the link carries it and restores it.
    const to = starts[4]! + 5;
    await page.fill("[data-testid=story-scrub]", String(to));
    await page.waitForFunction(`location.hash.includes("pos=${to}")`);
    await expect.poll(current).toBe("eviction");
    expect(await page.inputValue("[data-testid=story-scrub]")).toBe(String(to));
    const now = await page.textContent("[data-testid=story-now]");
    const other = await context.newPage();
    await other.goto(await page.evaluate(() => location.href));
    await other.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 150_000 });
    expect(await other.inputValue("[data-testid=story-scrub]")).toBe(String(to));
    expect(await other.getAttribute("[data-testid=story-chapters] button[aria-current=step]", "data-chapter")).toBe("eviction");
    expect(await other.textContent("[data-testid=story-now]")).toBe(now);
    await other.close();
    expect(h.errors).toEqual([]);
  }, 400_000);

  test('"path N": its title and summary where it appears, and the bundled document at that section', async () => {
    const { page } = h;
    // The story is loaded (previous test): go to the fault-in chapter's first kept event.
    await page.click("[data-testid=story-chapters] li:nth-child(3) button");
    await page.mouse.click(5, 790);
    await page.keyboard.press("ArrowRight");
    const ref = page.locator("[data-testid=story-now] .stage-badge button.path-ref").first();
    expect(await ref.textContent()).toBe("path 4");
    expect(await ref.getAttribute("title")).toMatch(/^Path 4: The fault-in path: first touch of a guest page under EPT\. The first touch/);
    await ref.click();
    expect(await page.textContent("[data-testid=path-tip]")).toContain("Path 4: The fault-in path");
    await page.click("[data-testid=path-tip] button");
    expect(await page.getAttribute("[data-testid=story-paths-doc]", "open")).not.toBeNull();
    await expect.poll(() => page.locator("[data-path-section='4'] h4").isVisible()).toBe(true);
    const box = await page.locator("[data-path-section='4'] h4").boundingBox();
    expect(box!.y).toBeGreaterThanOrEqual(-2);
    expect(box!.y).toBeLessThan(800);
    expect(await page.textContent("[data-path-section='4']")).toContain("tdp_mmu_map_handle_target_level()");
    await snap(page, "chapters-path-doc");
    await page.evaluate(() => {
      (document.querySelector("[data-testid=story-paths-doc]") as unknown as { open: boolean }).open = false;
    });
  }, 60_000);

  test("the panels do not move between steps (at most 2 px), across events, gaps, sections and chapters", async () => {
    const { page } = h;
    await page.mouse.click(5, 790);
    await page.keyboard.press("Home");
    await page.evaluate(() => scrollTo(0, 0));
    const tops = () =>
      page.evaluate(() =>
        ["[data-testid=story-panels]", "[data-testid=story-log]"].map(
          (s) => document.querySelector(s)!.getBoundingClientRect().top + scrollY,
        ),
      );
    const seen: number[][] = [];
    for (let c = 0; c < BUILT_IN.length; c++) {
      await page.keyboard.press("]");
      for (let i = 0; i < 25; i++) {
        await page.keyboard.press("ArrowRight");
        seen.push(await tops());
      }
    }
    for (const j of [0, 1]) {
      const v = seen.map((t) => t[j]!);
      expect(Math.max(...v) - Math.min(...v), j === 0 ? "panels" : "narration log").toBeLessThanOrEqual(2);
    }
  }, 120_000);

  test("shadow paging (examples/pagetable-heavy.yaml): its own chapters, and no EPT anywhere in the story", async () => {
    const { page, server } = h;
    await page.goto(`${server.url}#story&sc=${encodeURIComponent("examples/pagetable-heavy.yaml")}`);
    await page.reload();
    await page.waitForSelector("[data-testid=story-status][data-state=done]", { timeout: 180_000 });
    const ids = await page.$$eval("[data-testid=story-chapters] button", (bs) => bs.map((b) => b.getAttribute("data-chapter")));
    expect(ids).toEqual(["lazy", "shadow-cr3", "shadow-wp", "first-touch", "shadow-emulation", "fault-in", "shadow-unsync"]);
    const seen: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      await page.click(`[data-testid=story-chapters] li:nth-child(${k + 1}) button`);
      await page.mouse.click(5, 790);
      for (let i = 0; i < 4; i++) await page.keyboard.press("ArrowRight");
      seen.push(
        await page.evaluate(() =>
          ["chapter-nav", "story-now", "story-log", "story-panels", "story-trees"]
            .map((id) => (document.querySelector(`[data-testid=${id}]`) as unknown as { textContent: string } | null)?.textContent ?? "")
            .join("\n"),
        ),
      );
      if (k === 1 || k === 2 || k === 4 || k === 6) await snap(page, `chapter-shadow-${ids[k]}`);
    }
    const all = seen.join("\n");
    expect(all).toContain("Write-protected guest tables: KVM shadows the guest's page tables");
    expect(all).toContain("Chapter 7 of 7: Unsync");
    expect([...new Set(all.match(/.{0,60}\bEPT\b.{0,60}/g) ?? [])]).toEqual([]);
    for (const t of await page.$$eval("[data-testid=story-chapters] button, [data-testid=chapter-intro] h3", (es) =>
      es.map((e) => e.textContent ?? ""),
    ))
      expect(t).not.toMatch(RAW_KIND);
    expect(h.errors).toEqual([]);
  }, 300_000);
});
