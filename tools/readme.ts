// SPDX-License-Identifier: MIT
// The README's generated sections, from the declarations (convention 8): scenario
// parameters, counters, report figures, cost events. `npx tsx tools/readme.ts` rewrites them
// in place; test/readme.test.ts fails when the README and the declarations disagree.
import { readFileSync, writeFileSync } from "node:fs";
import { type CounterDesc, counterList, counterMeaning } from "../src/hw/counters.js";
import { HW_COUNTERS } from "../src/hw/mmu.js";
import { GUEST_COUNTERS, GUEST_PROCESS_COUNTERS, SELFTEST_COUNTERS } from "../src/guest/stats.js";
import { GUEST_SWAP_COUNTERS } from "../src/guest/swap_stats.js";
import { HOST_COUNTERS, HOST_MM_COUNTERS } from "../src/host/vmstat.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../src/kvm/stats.js";
import { COST_EVENTS } from "../src/sim/cost.js";
import { CHECK_FIGURES, HW_FIGURES, QEMU_FIGURES, REFERENCE_FIGURES, VIRT_MAP_FIGURES } from "../src/sim/report_figures.js";
import { scenarioParamMarkdown } from "../src/sim/scenario_schema.js";

const esc = (s: string) => s.replace(/\|/g, "\\|");

function counterTable(descs: readonly CounterDesc[]): string {
  const rows = descs.map((d) => `| \`${d.name}\` | ${d.kind} | ${d.unit} | ${esc(counterMeaning(d))} |`);
  return ["| counter | kind | unit | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

export function generatedSections(): Record<string, string> {
  return {
    params: scenarioParamMarkdown(),
    "counters-host": counterTable(HOST_COUNTERS),
    "counters-host-mm": counterTable(HOST_MM_COUNTERS),
    "counters-vm": counterTable(VM_COUNTERS),
    "counters-vcpu": counterTable(VCPU_COUNTERS),
    "counters-guest": counterTable([...GUEST_COUNTERS, ...GUEST_PROCESS_COUNTERS, ...GUEST_SWAP_COUNTERS]),
    "counters-hw": counterTable(HW_COUNTERS),
    "counters-selftest": counterTable([...SELFTEST_COUNTERS, ...counterList(VIRT_MAP_FIGURES)]),
    "figures-qemu": counterTable(counterList(QEMU_FIGURES)),
    "figures-hw": counterTable([
      ...counterList(HW_FIGURES),
      ...counterList(REFERENCE_FIGURES).map((d) => ({ ...d, name: `references.${d.name}` })),
    ]),
    "figures-check": counterTable(counterList(CHECK_FIGURES)),
    cost: [
      "| event | default cycles | one event is | source |",
      "|---|---|---|---|",
      ...COST_EVENTS.map((e) => `| \`${e.name}\` | ${e.cycles} | ${esc(e.description)} | ${esc(e.source)} |`),
    ].join("\n"),
  };
}

/** The README with every `<!-- gen:NAME -->...<!-- /gen:NAME -->` section replaced. */
export function regenerate(readme: string): string {
  let out = readme;
  for (const [name, body] of Object.entries(generatedSections())) {
    const re = new RegExp(`<!-- gen:${name} -->[\\s\\S]*?<!-- /gen:${name} -->`);
    if (!re.test(out)) throw new Error(`README.md has no <!-- gen:${name} --> section`);
    out = out.replace(re, `<!-- gen:${name} -->\n${body}\n<!-- /gen:${name} -->`);
  }
  return out;
}

if (process.argv[1]?.endsWith("readme.ts")) {
  const path = new URL("../README.md", import.meta.url);
  writeFileSync(path, regenerate(readFileSync(path, "utf8")));
}
