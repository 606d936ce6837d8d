// SPDX-License-Identifier: MIT
// `memvirt explain [scenario]`: the first fault-in and the first reclaim-and-re-fault of a run,
// step by step, in the story view's words (sim/narration.ts): the layer, the kernel function,
// what happened, addresses in hex.

import { Command } from "@commander-js/extra-typings";
import { EventBus, type SimEvent } from "../hw/events.js";
import { VmFailure } from "../kvm/kvm.js";
import { ChainCollector, type Chains, type PageKey } from "../sim/chains.js";
import { Engine, RunError } from "../sim/engine.js";
import { Machine } from "../sim/machine.js";
import { type NarrationContext, narrate, tablePath } from "../sim/narration.js";
import { ScenarioError } from "../sim/scenario_load.js";
import type { Scenario } from "../sim/scenario_schema.js";
import type { EventMap } from "../sim/sim_events.js";
import { hexAddr } from "../sim/text_format.js";
import { EXIT_RUN_FAILED } from "./errors.js";
import { FileSource } from "./file_source.js";
import { type Out, bold, dim, textWidth } from "./format.js";
import { wrap } from "./report_text.js";
import { pause } from "./interrupt.js";
import { RunExit, parseCount, readScenario } from "./run_cmd.js";

/** One pass of the run with a chain collector listening. */
async function collect(scenario: Scenario, seed: number | undefined, target: PageKey | null): Promise<Chains> {
  const bus = new EventBus<EventMap>();
  const chains = new ChainCollector(target);
  // Both chains found: the rest of the run goes on without events (emitters test bus.on).
  const stop = bus.listen((e: SimEvent) => {
    chains.onEvent(e);
    if (chains.done) stop();
  });
  const machine = new Machine(scenario, bus);
  const engine = new Engine(
    scenario,
    { ...(seed !== undefined ? { seed } : {}), sampleEvery: 0, openFile: (path: string) => new FileSource(path) },
    machine,
  );
  // The run ends at the first pause after both chains are found: the rest would not change them.
  const found = new Error("chains found");
  try {
    await engine.runAsync(async () => {
      if (chains.done) throw found;
      await pause();
    });
  } catch (e) {
    if (e !== found) throw e;
  }
  return chains.result();
}

/** The chains of a run; a second pass when the page first re-faulted was evicted after the first ones kept. */
export async function explainChains(scenario: Scenario, seed?: number): Promise<Chains> {
  const first = await collect(scenario, seed, null);
  if (first.rerunFor === null) return first;
  return collect(scenario, seed, first.rerunFor);
}

const LAYER: Record<string, string> = { host: "host mm", kvm: "KVM", guest: "guest", sim: "workload", qemu: "QEMU" };

function indent(text: string, pad: string, width: number): string {
  return wrap(text, Math.max(20, width - pad.length))
    .split("\n")
    .map((l) => `${pad}${l}`)
    .join("\n");
}

/** One chain, a numbered step per event: layer, kernel function, what happened, where in the tables. */
export function formatChain(out: Out, title: string, events: readonly SimEvent[], ctx: NarrationContext, notes: Set<string>): string {
  const width = textWidth(out);
  const lines = [bold(out, title)];
  events.forEach((e, i) => {
    const nar = narrate(e, ctx);
    const layer = LAYER[e.kind.split(".")[0]!] ?? e.kind;
    lines.push(`${String(i + 1).padStart(3)}. ${bold(out, layer)}: ${nar.mirrors || e.kind} ${dim(out, `[${e.kind}]`)}`);
    lines.push(indent(nar.text, "     ", width));
    const where = tablePath(e, ctx);
    if (where !== null) lines.push(indent(where, "     ", width));
    if (nar.correction !== undefined && !notes.has(nar.correction)) {
      notes.add(nar.correction);
      lines.push(indent(`Note: ${nar.correction}`, "     ", width));
    }
  });
  return lines.join("\n");
}

const pageOf = (events: readonly SimEvent[] | null) => {
  const m = events?.find((e) => e.kind === "host.swap_map");
  return m === undefined ? "" : ` at hva ${hexAddr(m.hva)}`;
};

/** The whole explanation: both chains, or a line saying which one the run never reached. */
export function formatExplain(out: Out, name: string, scenario: Scenario, c: Chains): string {
  const vm = scenario.vms[0]!;
  const ctx: NarrationContext = { mmu: vm.mmu, levels: vm.guest.levels ?? 4 };
  const notes = new Set<string>();
  const parts = [bold(out, `memvirt explain: ${name} (seed ${scenario.seed}), ${vm.mmu.toUpperCase()}`)];
  parts.push(
    c.faultIn === null
      ? "No fault-in: no access ever found a missing EPT/NPT or shadow entry (a preallocated, pre-mapped run?)."
      : formatChain(out, "1. The first fault-in (SEED-PATHS path 4)", c.faultIn, ctx, notes),
  );
  if (c.refault === null) {
    parts.push("No reclaim-and-re-fault: no page was read back from swap in this run (the host never ran short of memory?).");
  } else {
    if (c.eviction !== null)
      parts.push(formatChain(out, `2. Reclaim evicts the page${pageOf(c.refault)} (path 5)`, c.eviction, ctx, notes));
    parts.push(
      formatChain(
        out,
        `${c.eviction === null ? "2" : "3"}. The guest touches it again: the re-fault (paths 5.7, 6)`,
        c.refault,
        ctx,
        notes,
      ),
    );
  }
  return `${parts.join("\n\n")}\n`;
}

export function explainCommand(out: Out) {
  return new Command("explain")
    .description(
      "run a scenario (the built-in story without one) and tell its first fault-in and its first reclaim-and-re-fault, step by step",
    )
    .argument("[scenario]", "scenario file, YAML or JSON (see examples/)")
    .option("--seed <n>", "override the scenario's seed")
    .option("--force", "run even when the planned work is beyond the bounds")
    .action(async (file, o) => {
      const seed = o.seed === undefined ? undefined : parseCount("--seed", o.seed, "a seed");
      let loaded: { scenario: Scenario; name: string };
      try {
        loaded = readScenario(file, { force: o.force === true });
      } catch (e) {
        if (e instanceof ScenarioError) {
          out.error(`${e.format()}\n`);
          throw new RunExit(2);
        }
        throw e;
      }
      let chains: Chains;
      try {
        chains = await explainChains(loaded.scenario, seed);
      } catch (e) {
        if (e instanceof RunError || e instanceof VmFailure) {
          out.error(`memvirt: run failed: ${e.message}\n`);
          throw new RunExit(EXIT_RUN_FAILED);
        }
        throw e;
      }
      const scenario = seed === undefined ? loaded.scenario : { ...loaded.scenario, seed };
      out.write(formatExplain(out, loaded.name, scenario, chains));
    });
}
