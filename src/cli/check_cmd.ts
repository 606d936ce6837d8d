// SPDX-License-Identifier: MIT
// `memvirt check <scenario> [--schedules n] [--pressure p]`: run the same workload under many
// interleavings (the scheduler alone reseeded; kswapd or a page-out let loose at KVM's fault
// race points; another vCPU's fault run inside the host's open invalidations) with every check
// on (Engine checks "full": translations against the guest's tables, host and shadow MMU
// invariants), and fail if any loses data, leaves a stale mapping or breaks an invariant.

import { Command, Option } from "@commander-js/extra-typings";
import { Engine, RunError } from "../sim/engine.js";
import { VmFailure } from "../kvm/kvm.js";
import { ScenarioError } from "../sim/scenario_load.js";
import { UsageError } from "./errors.js";
import { FileSource } from "./file_source.js";
import { type Out, bold, n, table } from "./format.js";
import { startProgress } from "./progress.js";
import { EXIT_RUN_FAILED, RunExit, parseCount, readScenario, runEngine } from "./run_cmd.js";

export interface ScheduleResult {
  schedule: number;
  dataErrors: number;
  invariantViolations: number;
  retries: number;
  exits: number;
  pswpout: number;
  messages: string[];
}

export function checkCommand(out: Out) {
  return new Command("check")
    .description(
      "run a scenario under many interleavings of vCPUs, kswapd and KVM's fault path; fail if any loses data or leaves a stale mapping",
    )
    .argument("[scenario]", "scenario file (default: the built-in story)")
    .option("--schedules <n>", "number of interleavings to try", "20")
    .option("--pressure <p>", "probability that kswapd runs at each fault race point (0 to 1)", "0.5")
    .option("--json", "print the results as JSON")
    .option("--force", "check even when the planned work (all schedules together) is beyond the bounds")
    .addOption(
      new Option(
        "--debug-skip-seq-check",
        "KVM installs sptes without re-checking mmu_invalidate_seq (to watch the checker catch the race)",
      ).hideHelp(false),
    )
    .action(async (file, o) => {
      const schedules = parseCount("--schedules", o.schedules, "a number of schedules");
      if (schedules === 0) throw new UsageError("--schedules 0 would check nothing; give 1 or more (default 20)");
      const pressure = Number(o.pressure);
      if (!(pressure >= 0 && pressure <= 1)) throw new UsageError(`--pressure: '${o.pressure}' is not a probability; a number from 0 to 1`);
      let scenario: ReturnType<typeof readScenario>["scenario"];
      let name: string;
      try {
        ({ scenario, name } = readScenario(file, { force: o.force === true, runs: schedules }));
      } catch (e) {
        if (e instanceof ScenarioError) {
          out.error(`${e.format()}\n`);
          throw new RunExit(2);
        }
        throw e;
      }
      const results: ScheduleResult[] = [];
      const progress = await startProgress(out, "check", "schedules");
      progress.phase(name, schedules);
      for (let s = 1; s <= schedules; s++) {
        progress.update(s - 1, schedules);
        try {
          const e = new Engine(scenario, {
            scheduleSeed: s,
            // Odd schedules let kswapd run inside faults; even ones reclaim the very page in flight.
            raceAgent: s % 2 === 1 ? "kswapd" : "pageout",
            racePressure: pressure,
            openFile: (p: string) => new FileSource(p),
            sampleEvery: 0,
            debugSkipSeqCheck: o.debugSkipSeqCheck === true,
            invalidationRaces: true,
            checks: "full",
          });
          const r = await runEngine(e);
          results.push({
            schedule: s,
            dataErrors: r.check.dataErrors,
            invariantViolations: r.check.invariantViolations,
            retries: r.vms.reduce((a, vm) => a + (vm.stats.mmu_fault_retries ?? 0), 0),
            exits: r.vms.reduce((a, vm) => a + (vm.stats.exits ?? 0), 0),
            pswpout: r.host.vmstat.pswpout ?? 0,
            messages: r.check.messages,
          });
        } catch (e) {
          progress.stop();
          if (e instanceof RunError || e instanceof VmFailure) {
            out.error(`memvirt: run failed under schedule ${s}: ${e.message}\n`);
            throw new RunExit(EXIT_RUN_FAILED);
          }
          throw e;
        }
      }
      progress.stop();
      const bad = results.filter((r) => r.dataErrors > 0 || r.invariantViolations > 0);
      if (o.json) out.write(`${JSON.stringify({ scenario: name, pressure, results }, null, 2)}\n`);
      else {
        out.write(`${bold(out, `memvirt check: ${name}, ${schedules} schedules, race pressure ${pressure}`)}\n`);
        out.write(
          `${table(
            out,
            ["schedule", "at race points", "exits", "fault retries", "pswpout", "data errors", "stale/invalid"],
            results.map((r) => [
              r.schedule,
              r.schedule % 2 === 1 ? "kswapd" : "page-out of the faulting page",
              n(r.exits),
              n(r.retries),
              n(r.pswpout),
              r.dataErrors,
              r.invariantViolations,
            ]),
            ["right", "left", "right", "right", "right", "right", "right"],
          )}\n`,
        );
        if (bad.length === 0)
          out.write(
            `OK: no schedule lost data or left a stale mapping (${n(results.reduce((a, r) => a + r.retries, 0))} faults retried after a racing invalidation).\n`,
          );
        else for (const b of bad) out.write(`schedule ${b.schedule}:\n  ${b.messages.join("\n  ")}\n`);
      }
      if (bad.length > 0) throw new RunExit(EXIT_RUN_FAILED);
    });
}
