// SPDX-License-Identifier: MIT
// The story's cursor in Chromium, on examples/reclaim-swap.yaml: stepping through the first
// page's reclaim, the chain strip lights the link of each event, and at the first swap-out
// the trees follow that page (the gpa from KVM's zap, QEMU's hva), QEMU's PTE reads as a
// swap entry for the event's slot, the magnified frame strip outlines the event's frame,
// and the swap panel shows the slot taken. The expected values come from the same run in
// Node (the worker runs the same library). A screenshot of every step of the chain.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EventBus, type SimEvent } from "../../src/hw/events.js";
import { Engine } from "../../src/sim/engine.js";
import { Machine } from "../../src/sim/machine.js";
import { loadScenario } from "../../src/sim/scenario_load.js";
import { chainAt, cursorPage } from "../../src/web/story_cursor.js";
import { closeHarness, type Harness, haveChromium, openHarness, ROOT, snap } from "./browser_helpers.js";

if (!haveChromium)
  console.warn(
    "test/web/browser_cursor.test.ts: SKIPPED: /usr/bin/chromium is absent (apt-get install -y --no-install-recommends chromium).",
  );

const EXAMPLE = "examples/reclaim-swap.yaml";

declare const document: { querySelector(s: string): { getAttribute(n: string): string | null } | null };

/** The events around the run's first event of `kind` (the 200 to 400 before it, 40 after), and its index among them. */
function around(kind: string): { evs: SimEvent[]; i: number } {
  const text = readFileSync(join(ROOT, EXAMPLE), "utf8");
  const sc = loadScenario(text, EXAMPLE);
  const bus = new EventBus();
  let ring: SimEvent[] = [];
  let i = -1;
  let after = 0;
  bus.listen((e) => {
    if (i >= 0) {
      if (after++ < 40) ring.push(e);
      return;
    }
    ring.push(e);
    if (ring.length > 400) ring = ring.slice(-200);
    if (e.kind === kind) i = ring.length - 1;
  });
  new Engine(sc, {}, new Machine(sc, bus)).run();
  return { evs: ring, i };
}

describe.skipIf(!haveChromium)("the story's cursor", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness("web-dist-cursor");
  }, 120_000);
  afterAll(() => closeHarness(h));

  test("every panel follows the first swap-out's page; the chain strip lights each link", async () => {
    const { evs, i } = around("host.swap_out");
    const out = evs[i]!;
    const { objects, chain } = cursorPage(evs, i);
    expect(chain?.chain).toBe("reclaim");
    expect(objects.gpa).toBeGreaterThanOrEqual(0);

    const { page, server, errors } = h;
    /** An attribute now, or null if the element is absent (no waiting). */
    const attr = (sel: string, name: string) =>
      page.evaluate(([s, n]) => document.querySelector(s!)?.getAttribute(n!) ?? null, [sel, name] as const);
    await page.goto(`${server.url}#story&sc=${encodeURIComponent(EXAMPLE)}`);
    await page.reload();
    const chapter = "[data-testid=story-chapter] option[data-reason^='first host.swap_alloc']";
    await page.waitForSelector(chapter, { state: "attached", timeout: 90_000 });
    await page.selectOption("[data-testid=story-chapter]", await page.$eval(chapter, (o) => o.getAttribute("value")!));
    await page.mouse.click(5, 790);
    // Back to the page's aging walk: the start of its chain.
    for (let k = 0; k < 12 && (await attr("[data-testid=chain-strip]", "data-link")) !== "0"; k++) await page.keyboard.press("ArrowLeft");
    // The aging walk is the chain's first event, one or two steps before the accessed-bit query.
    for (let k = 0; k < 2; k++) {
      await page.keyboard.press("ArrowLeft");
      if ((await attr("[data-testid=chain-strip]", "data-link")) !== "0") {
        await page.keyboard.press("ArrowRight");
        break;
      }
    }
    expect(await page.getAttribute("[data-testid=chain-strip]", "data-link")).toBe("0");
    const seen: string[] = [];
    for (let k = 0; k < 40; k++) {
      const kind = (await attr("[data-testid=story-now]", "data-kind")) ?? "";
      const link = await attr("[data-testid=chain-strip]", "data-link");
      if (link !== null && kind !== "chapter") {
        // The lit link is the one whose kinds hold this event's.
        const kinds = await attr("[data-testid=chain-strip] li.current", "data-kinds");
        expect(kinds?.split(" ")).toContain(kind);
        seen.push(`${link}:${kind}`);
        await snap(page, `cursor-${String(seen.length).padStart(2, "0")}-${kind.replace(/\./g, "-")}`, true);
      }
      if (kind === "host.swap_out") break;
      await page.keyboard.press("ArrowRight");
    }
    expect(await page.getAttribute("[data-testid=story-now]", "data-kind")).toBe("host.swap_out");
    expect(seen).toEqual([
      "0:host.rmap_walk",
      "0:host.notifier.clear_flush_young",
      "1:host.folio_references",
      "2:host.swap_alloc",
      "3:host.rmap_walk",
      "4:host.notifier.start",
      "5:kvm.notifier_zap",
      "6:kvm.remote_tlb_flush",
      "7:host.rmap_remove",
      "7:host.unmap",
      "8:host.notifier.end",
      "9:host.swap_out",
    ]);

    // The trees follow this page: the gpa comes from KVM's zap, the hva is QEMU's.
    const trees = "[data-testid=story-trees]";
    expect(await page.getAttribute(trees, "data-follow")).toBe("cursor");
    expect(Number(await page.getAttribute(trees, "data-gpa"))).toBe(objects.gpa);
    expect(Number(await page.getAttribute(trees, "data-hva"))).toBe(out.hva);
    expect(await page.textContent("[data-testid=tree-host-end]")).toBe(`\u2192 the page is in swap slot ${out.slot}`);
    expect(await page.textContent("[data-testid=tree-kvm-end]")).toContain("exits to KVM");
    // The magnified strip outlines the event's frame; the swap panel shows the slot written.
    expect(Number(await page.getAttribute("[data-testid=frame-zoom]", "data-pfn"))).toBe(out.pfn);
    expect(await page.getAttribute("[data-testid=swap-move]", "data-slot")).toBe(String(out.slot));
    expect(await page.getAttribute("[data-testid=swap-move]", "data-op")).toBe("out");

    // Two steps back, QEMU's PTE became the swap entry: its value before and after.
    for (let k = 0; k < 6 && (await attr("[data-testid=story-now]", "data-kind")) !== "host.unmap"; k++) {
      await page.keyboard.press("ArrowLeft");
    }
    expect(await page.getAttribute("[data-testid=story-now]", "data-kind")).toBe("host.unmap");
    expect(await page.textContent("[data-testid=tree-host-before]")).toContain(`pfn=0x${Number(out.pfn).toString(16)}`);
    expect(await page.textContent("[data-testid=tree-host] [data-lit='1'] > .tree-bits:not(.before)")).toBe(
      `swap entry: slot ${out.slot} (not present)`,
    );

    // Follow this page: the trees stay on it as the story moves on.
    await page.click("[data-testid=follow-pin]");
    for (let k = 0; k < 5; k++) await page.keyboard.press("ArrowRight");
    expect(await page.getAttribute(trees, "data-follow")).toBe("pinned");
    expect(Number(await page.getAttribute(trees, "data-gpa"))).toBe(objects.gpa);
    await page.click("[data-testid=follow-unpin]");
    expect(await page.getAttribute(trees, "data-follow")).toBe("cursor");
    // A click on a frame in the magnified strip follows the page that frame held when an event last read it.
    const first = Number(await page.getAttribute("[data-testid=frame-zoom]", "data-first"));
    const cell = Number(out.pfn) - first;
    await page.click("canvas.frame-zoom", { position: { x: (cell % 32) * 14 + 7, y: Math.floor(cell / 32) * 14 + 7 } });
    expect(await page.getAttribute(trees, "data-follow")).toBe("pinned");
    expect(Number(await page.getAttribute(trees, "data-hva"))).toBe(out.hva);
    expect(await page.textContent("[data-testid=tree-host-end]")).toBe(`\u2192 host frame 0x${Number(out.pfn).toString(16)}`);
    await page.click("[data-testid=follow-unpin]");

    // The first re-fault from swap: one chain from the exit to the VM entry, each link lit in turn.
    const r = around("host.swap_in");
    const rc = chainAt(r.evs, r.i)!;
    expect(rc.chain).toBe("refault");
    const want = rc.members.map((j) => `${chainAt(r.evs, j)!.link}:${r.evs[j]!.kind}`);
    const swapIn = "[data-testid=story-chapter] option[data-reason^='first host.swap_in']";
    await page.waitForSelector(swapIn, { state: "attached", timeout: 90_000 });
    await page.selectOption("[data-testid=story-chapter]", await page.$eval(swapIn, (o) => o.getAttribute("value")!));
    await page.mouse.click(5, 790);
    for (let k = 0; k < 12 && (await attr("[data-testid=story-now]", "data-kind")) !== "kvm.exit"; k++)
      await page.keyboard.press("ArrowLeft");
    const got: string[] = [];
    for (let k = 0; k < 30 && got.length < want.length; k++) {
      const kind = (await attr("[data-testid=story-now]", "data-kind")) ?? "";
      if (kind !== "chapter") {
        expect(await attr("[data-testid=chain-strip]", "data-chain")).toBe("refault");
        got.push(`${await attr("[data-testid=chain-strip]", "data-link")}:${kind}`);
        await snap(page, `refault-${String(got.length).padStart(2, "0")}-${kind.replace(/\./g, "-")}`, true);
        if (kind === "kvm.spte_install") {
          // KVM's new leaf is lit, mapping the gpa the exit named to the frame swapped in.
          expect(Number(await page.getAttribute(trees, "data-gpa"))).toBe(rc.page.gpa);
          expect(await page.textContent("[data-testid=tree-kvm-end]")).toBe(`\u2192 host frame 0x${rc.page.pfn!.toString(16)}`);
          expect(await attr("[data-testid=tree-kvm] [data-lit='1']", "data-level")).toBe("1");
        }
      }
      await page.keyboard.press("ArrowRight");
    }
    expect(got).toEqual(want);
    expect(errors).toEqual([]);
  }, 300_000);
});
