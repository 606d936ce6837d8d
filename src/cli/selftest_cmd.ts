// SPDX-License-Identifier: MIT
// `memvirt selftest <test> [options]`: KVM's selftests with their own command lines and
// output lines, timed in model time (docs/selftests.md).

import { Command, Option } from "@commander-js/extra-typings";
import { SelftestAssert, SelftestFailure } from "../sim/selftest_options.js";
import { DEFAULT_MODEL, type ModelOptions, demandPagingHelp, parseDemandPaging, runDemandPaging } from "../sim/selftest_demand_paging.js";
import { accessTrackingHelp, parseAccessTracking, runAccessTracking } from "../sim/selftest_access_tracking.js";
import { dirtyLogPerfHelp, parseDirtyLogPerf, runDirtyLogPerf } from "../sim/selftest_dirty_log_perf.js";
import { EXIT_RUN_FAILED, UsageError } from "./errors.js";
import type { Out } from "./format.js";

interface SelftestDef {
  file: string;
  help(): string;
  run(argv: readonly string[], model: ModelOptions & { eagerPageSplit: boolean }): string[] | "help";
}

const TESTS: Record<string, SelftestDef> = {
  demand_paging: {
    file: "demand_paging_test",
    help: demandPagingHelp,
    run(argv, model) {
      const p = parseDemandPaging(argv);
      return p === "help" ? "help" : runDemandPaging(p, model).lines;
    },
  },
  access_tracking_perf: {
    file: "access_tracking_perf_test",
    help: accessTrackingHelp,
    run(argv, model) {
      const p = parseAccessTracking(argv);
      return p === "help" ? "help" : runAccessTracking(p, model).lines;
    },
  },
  dirty_log_perf: {
    file: "dirty_log_perf_test",
    help: dirtyLogPerfHelp,
    run(argv, model) {
      const p = parseDirtyLogPerf(argv);
      return p === "help" ? "help" : runDirtyLogPerf(p, model).lines;
    },
  },
};

function parseGhz(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 10)) throw new UsageError(`--ghz: '${v}' is not a clock rate; give GHz like 3 or 2.4 (above 0, at most 10)`);
  return n;
}

/** -h is the real test's help, so commander's help is --help only (kept so after main.ts copies the program's settings). */
class SelftestCommand extends Command {
  override copyInheritedSettings(from: Command): this {
    super.copyInheritedSettings(from);
    return this.helpOption("--help", "display help for the command");
  }
}

export function selftestCommand(out: Out): Command {
  const cmd = new SelftestCommand("selftest")
    .description(
      `run one of KVM's selftests (${Object.keys(TESTS).join(", ")}) with the real test's options, printing its lines in model time`,
    )
    .argument("<test>", `the test: ${Object.keys(TESTS).join(", ")}`)
    .argument("[options...]", "the real test's options (-v 2 -b 4M ...; -h lists them)")
    .addOption(new Option("--mmu <mmu>", "memvirt: how KVM maps guest memory").choices(["ept", "npt", "shadow"] as const).default("ept"))
    .option("--ghz <n>", "memvirt: the clock that turns model cycles into seconds", "3")
    .addOption(
      new Option("--thp <mode>", "memvirt: the host's transparent_hugepage/enabled")
        .choices(["never", "madvise", "always"] as const)
        .default("madvise"),
    )
    .addOption(
      new Option("--eager-page-split <Y|N>", "memvirt: the kvm module's eager_page_split (dirty_log_perf)")
        .choices(["Y", "N"] as const)
        .default("Y"),
    )
    .helpOption("--help", "display help for the command")
    .allowUnknownOption()
    .action((test, args, o) => {
      const def = TESTS[test];
      if (def === undefined) throw new UsageError(`selftest: no test named "${test}"; memvirt runs ${Object.keys(TESTS).join(", ")}`);
      const model = { ...DEFAULT_MODEL, mmu: o.mmu, ghz: parseGhz(o.ghz), thp: o.thp, eagerPageSplit: o.eagerPageSplit === "Y" };
      let lines: string[] | "help";
      try {
        lines = def.run(args, model);
      } catch (e) {
        if (e instanceof SelftestFailure)
          throw new UsageError(`selftest ${test}: ${e.message}\n(${def.file}'s TEST_ASSERT failed in the model)`, EXIT_RUN_FAILED);
        if (!(e instanceof SelftestAssert)) throw e;
        const who = e.memvirt ? "memvirt" : `${def.file}'s own TEST_ASSERT`;
        throw new UsageError(`selftest ${test}: ${e.message}\n(refused by ${who}; \`memvirt selftest ${test} -h\` lists the options)`);
      }
      out.write(lines === "help" ? def.help() : `${lines.join("\n")}\n`);
    });
  // The typed arguments of this command do not matter to the program that adds it.
  return cmd as unknown as Command;
}
