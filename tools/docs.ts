// SPDX-License-Identifier: MIT
// docs/'s generated sections, from the declarations: the scenario keys (docs/scenario.md), the
// counters and figures (docs/report.md), the cost table (docs/cost-model.md) and the event
// kinds (docs/events.md). `npx tsx tools/docs.ts` rewrites them in place; test/docs.test.ts
// fails when a doc and the declarations disagree.
import { readFileSync, writeFileSync } from "node:fs";
import type { EventDecls } from "../src/hw/events.js";
import { GUEST_EVENTS } from "../src/guest/guest_events.js";
import { HOST_EVENTS } from "../src/host/host_events.js";
import { KVM_EVENTS } from "../src/kvm/kvm_events.js";
import { SIM_EVENTS } from "../src/sim/sim_events.js";
import { generatedSections } from "./readme.js";

const esc = (s: string) => s.replace(/\|/g, "\\|");

/** One table per layer: kind, what happened, the kernel function it mirrors, its fields. */
export function eventTable(decls: EventDecls): string {
  const rows = Object.entries(decls).map(
    ([kind, d]) =>
      `| \`${kind}\` | ${esc(d.description)} | ${esc(d.mirrors)} | ${Object.entries(d.fields)
        .map(([f, t]) => `\`${f}\`${String(t).endsWith("?") ? "?" : ""}`)
        .join(", ")} |`,
  );
  return ["| kind | what happened | mirrors | fields |", "|---|---|---|---|", ...rows].join("\n");
}

export function docSections(): Record<string, string> {
  return {
    ...generatedSections(),
    "events-host": eventTable(HOST_EVENTS),
    "events-kvm": eventTable(KVM_EVENTS),
    "events-guest": eventTable(GUEST_EVENTS),
    "events-sim": eventTable(SIM_EVENTS),
  };
}

export const GENERATED_DOCS = ["docs/scenario.md", "docs/report.md", "docs/cost-model.md", "docs/events.md"];

/** A doc with every `<!-- gen:NAME -->...<!-- /gen:NAME -->` section it holds replaced. */
export function regenerateDoc(text: string): string {
  let out = text;
  for (const [name, body] of Object.entries(docSections())) {
    const re = new RegExp(`<!-- gen:${name} -->[\\s\\S]*?<!-- /gen:${name} -->`);
    out = out.replace(re, `<!-- gen:${name} -->\n${body}\n<!-- /gen:${name} -->`);
  }
  return out;
}

if (process.argv[1]?.endsWith("docs.ts")) {
  for (const doc of GENERATED_DOCS) {
    const path = new URL(`../${doc}`, import.meta.url);
    writeFileSync(path, regenerateDoc(readFileSync(path, "utf8")));
  }
}
