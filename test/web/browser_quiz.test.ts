// SPDX-License-Identifier: MIT
// The translate view's quiz and side-by-side modes in Chromium. The expected answers are
// computed here from the model with the page's inputs (runTranslate for the walk, the quiz's
// tiny run for the fault-in and the counters), never read from the page: answering them all
// scores full marks, a wrong answer is explained, the mode and question index survive a
// reload, and side by side shows runTranslate's 25 references beside the shadow walk's 5.

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEFAULT_TRANSLATE, runTranslate } from "../../src/sim/translate.js";
import { chainSteps } from "../../src/web/quiz_chain.js";
import { counterQuestions } from "../../src/web/quiz_counters.js";
import { quizRun } from "../../src/web/quiz_run.js";
import { shadowWalk } from "../../src/web/shadow_walk.js";
import { gridFor } from "../../src/web/translate_grid.js";
import { closeHarness, type Harness, haveChromium, openHarness, snap } from "./browser_helpers.js";

// The page's document, as far as page.evaluate() reads it here (the test compiles without the DOM library).
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

if (!haveChromium)
  console.warn(
    "test/web/browser_quiz.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).",
  );

describe.skipIf(!haveChromium)("translate view: quiz and side by side", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-quiz");
  }, 180_000);
  afterAll(() => closeHarness(h));

  test("the walk quiz: the model's 25 references answered right score 25/25; a wrong pick is explained; the link keeps the question", async () => {
    const { page, server } = h;
    // The page's default walk: a cold 4+4 EPT read of the default gva, caches off.
    const walk = runTranslate({ ...DEFAULT_TRANSLATE, accesses: 1, caches: false });
    const cells = gridFor(walk).cells;
    expect(cells.length).toBe(25);
    await page.goto(`${server.url}#translate&tab=quiz`);
    await page.waitForSelector("[data-testid=walk-quiz]");
    // A wrong pick first: the guest's PML4 entry before the EPT walk of its address.
    await page.click("[data-quiz-table=g4]");
    await page.click('[data-quiz-cell="0,4"]');
    await page.click("[data-testid=quiz-check]");
    expect(await page.textContent("[data-testid=quiz-why]")).toContain(
      "before reading its entry the hardware translates guest table gPML4's guest-physical address through the EPT tables, starting at EPT L4",
    );
    expect(await page.textContent("[data-testid=quiz-score]")).toBe("Score 0/1");
    await snap(page, "quiz-walk-wrong");
    await page.click("[data-testid=quiz-restart]");
    for (const [i, c] of cells.entries()) {
      const s = c.step;
      const key = s.kind === "data" ? "d" : `${s.kind === "guest-table" ? "g" : "n"}${s.level}`;
      await page.click(`[data-quiz-table=${key}]`);
      await page.click(`[data-quiz-cell="${c.row},${c.col}"]`);
      await page.click("[data-testid=quiz-check]");
      if (i === 6) {
        await expect.poll(() => page.url()).toContain("tab=quiz&q=7&qok=7");
        await snap(page, "quiz-walk-7");
      }
    }
    expect(await page.textContent("[data-testid=quiz-score]")).toBe("Score 25/25");
    expect(await page.textContent("[data-testid=quiz-done]")).toBe("All 25 references answered: 25 of 25 right.");
    // The last reference revealed is the data access at the model's hpa.
    expect(await page.textContent('[data-step="25"]')).toContain(`hpa ${walk.hpa}`);
    await snap(page, "quiz-walk-done", true);
    // The mode and question index come back from the link.
    await page.goto(`${server.url}#translate&tab=quiz&q=3&qok=2`);
    await page.reload();
    await page.waitForSelector("[data-testid=walk-quiz]");
    expect(await page.textContent("[data-testid=quiz-score]")).toBe("Score 2/3");
    expect(await page.textContent("[data-testid=quiz-pos]")).toBe("reference 4 of 25");
    expect(await page.$$eval("[data-testid=walk-quiz] td[data-filled]", (t) => t.length)).toBe(3);
    expect(h.errors).toEqual([]);
  }, 120_000);

  test("the fault-in and counter quizzes: answers from the same tiny run score full marks; a wrong one says what comes next", async () => {
    const { page, server } = h;
    const run = quizRun("ept");
    const steps = chainSteps(run.faultIn, "ept");
    await page.goto(`${server.url}#translate&tab=quiz&quiz=fault`);
    await page.reload();
    await page.waitForSelector("[data-testid=fault-quiz]", { timeout: 60_000 });
    await page.click(`[data-quiz-answer="${steps[2]!.key}"]`); // after the exit, not yet the host's page tables
    expect(await page.textContent("[data-testid=quiz-why]")).toContain('Next is "host page fault on QEMU\'s memory"');
    await snap(page, "quiz-fault-wrong");
    await page.click("[data-quiz-kind=walk]");
    await page.click("[data-quiz-kind=fault]");
    await page.waitForSelector("[data-testid=fault-quiz]", { timeout: 60_000 });
    for (const s of steps.slice(1)) await page.click(`[data-quiz-answer="${s.key}"]`);
    expect(await page.textContent("[data-testid=quiz-score]")).toBe(`Score ${steps.length - 1}/${steps.length - 1}`);
    expect(await page.textContent("[data-testid=fault-quiz] ol")).toContain("EPT entry installed");
    await snap(page, "quiz-fault-done", true);

    const qs = counterQuestions(run);
    await page.click("[data-quiz-kind=counters]");
    await page.waitForSelector("[data-testid=counter-quiz]", { timeout: 60_000 });
    expect(await page.textContent("[data-testid=counter-quiz] legend")).toBe(`Which counter moves when ${qs[0]!.situation}?`);
    for (const [i, q] of qs.entries()) {
      await page.click(`[data-quiz-answer="${q.answer}"]`);
      if (i === 0) {
        // The run's counts for every option of the question just answered.
        const want = q.options.map((o) => `${o.label}${o.delta}`).join("");
        expect(await page.textContent("[data-testid=counter-deltas] tbody")).toBe(want);
        await snap(page, "quiz-counters-1");
      }
    }
    expect(await page.textContent("[data-testid=quiz-score]")).toBe(`Score ${qs.length}/${qs.length}`);
    expect(await page.textContent("[data-testid=quiz-why]")).toBe(
      "Host /proc/vmstat pgmajfault moved by 20 (page faults that needed I/O (a swap read)).",
    );
    await snap(page, "quiz-counters-done");

    // Under shadow paging the fault-in is the shadow MMU's, in its words.
    const shadow = chainSteps(quizRun("shadow").faultIn, "shadow");
    await page.goto(`${server.url}#translate&mode=shadow&tab=quiz&quiz=fault`);
    await page.reload();
    await page.waitForSelector("[data-testid=fault-quiz]", { timeout: 60_000 });
    for (const st of shadow.slice(1)) await page.click(`[data-quiz-answer="${st.key}"]`);
    const text = (await page.textContent("[data-testid=fault-quiz]")) ?? "";
    expect(text).toContain("shadow PTE (spte) installed");
    expect(text.match(/.{0,40}\bEPT\b.{0,40}/g)).toBeNull();
    await snap(page, "quiz-fault-shadow", true);
    expect(h.errors).toEqual([]);
  }, 120_000);

  test("side by side: 25 references under EPT beside the shadow walk's 5 for the same gva, the numbers runTranslate's", async () => {
    const { page, server } = h;
    const opts = { ...DEFAULT_TRANSLATE, accesses: 1, caches: false };
    const ept = runTranslate({ ...opts, paging: "ept" });
    const shadow = shadowWalk({ ...opts, paging: "native", hostPage: "4k" });
    await page.goto(`${server.url}#translate&tab=side`);
    await page.reload();
    await page.waitForSelector("[data-testid=side-by-side]");
    for (let i = 0; i < 5; i++) await page.click("[data-testid=side-step]");
    expect(await page.textContent("[data-testid=side-ept-count]")).toBe("5");
    expect(await page.textContent("[data-testid=side-shadow-count]")).toBe("5");
    await snap(page, "quiz-side-5");
    await page.click("[data-testid=side-end]");
    expect(Number(await page.textContent("[data-testid=side-ept-count]"))).toBe(ept.steps.length);
    expect(ept.steps.length).toBe(25);
    expect(Number(await page.textContent("[data-testid=side-shadow-count]"))).toBe(shadow.walk.steps.length);
    expect(Number(await page.textContent("[data-testid=side-miss-count]"))).toBe(shadow.walk.references.guestTable);
    expect(await page.$$eval("[data-testid=side-ept] li[data-filled='1']", (l) => l.length)).toBe(25);
    expect(await page.textContent("[data-testid=side-ept] li:last-child")).toContain(`hpa ${ept.hpa}`);
    expect(await page.textContent("[data-testid=side-shadow] li:last-child")).toContain(`hpa ${shadow.walk.steps.at(-1)!.hpa}`);
    expect(await page.textContent("[data-testid=side-summary]")).toContain("EPT makes 25 references");
    await snap(page, "quiz-side-end", true);

    // Phone width and the dark theme: no sideways scrolling in either mode.
    await page.setViewportSize({ width: 390, height: 844 });
    for (const tab of ["side", "quiz"]) {
      await page.click(`[data-tab=${tab}]`);
      await page.waitForTimeout(200);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `the ${tab} mode scrolls sideways at 390 px`).toBeLessThanOrEqual(0);
      await snap(page, `quiz-phone-${tab}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.click("[data-tab=quiz]");
    await page.click("[data-quiz-table=g4]");
    await page.click('[data-quiz-cell="0,4"]');
    await page.click("[data-testid=quiz-check]");
    await snap(page, "quiz-walk-dark");
    await page.emulateMedia({ colorScheme: "light" });
    expect(h.errors).toEqual([]);
  }, 120_000);
});
