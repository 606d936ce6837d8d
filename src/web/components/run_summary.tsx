// SPDX-License-Identifier: MIT
// What `memvirt run` prints after the counters, for each report: the summary paragraph, the
// overhead against bare metal, and each VM's exits by reason, in the CLI's own words
// (sim/report_summary.ts), so the page and the terminal say the same thing.

import type { Report } from "../../sim/report.js";
import { exitsByReason, overheadText } from "../../sim/report_summary.js";
import { summary } from "../../sim/report_summary.js";
import type { Scenario } from "../../sim/scenario_schema.js";
import { int } from "../format.js";
import { Term } from "./term.js";

export function RunSummaries({ reports, labels, scenarios }: { reports: Report[]; labels: string[]; scenarios: (Scenario | undefined)[] }) {
  return (
    <div class={reports.length > 1 ? "cols" : ""}>
      {reports.map((r, i) => (
        <section
          key={i}
          class="panel"
          data-testid={`run-summary-${i}`}
          aria-label={`Summary${reports.length > 1 ? ` (${labels[i]})` : ""}`}
        >
          <h3>Summary{reports.length > 1 ? ` (${labels[i]})` : ""}</h3>
          <p data-testid={`summary-text-${i}`}>{summary(r, scenarios[i])}</p>
          {r.native !== null && r.overheadRatio !== null && (
            <p data-testid={`overhead-${i}`}>
              <strong>Against bare metal:</strong> {int(r.cost.cycles)} cycles virtualized{overheadText(r.native, r.overheadRatio)} (
              {(r.overheadRatio + 1).toFixed(2)} times as long).
            </p>
          )}
          {r.vms.map((vm, vi) => (
            <ExitTable key={vi} vm={vm} testid={`exits-${i}-${vi}`} />
          ))}
        </section>
      ))}
    </div>
  );
}

function ExitTable({ vm, testid }: { vm: Report["vms"][number]; testid: string }) {
  const rows = exitsByReason(vm);
  const perCpu = vm.vcpus.length > 1;
  if (rows.length === 0) return <p>{vm.name}: no VM exits.</p>;
  return (
    <div class="table-wrap">
      <table class="data-table" data-testid={testid}>
        <caption>
          {vm.name}: <Term id="exit">exits</Term> by reason ({int(vm.stats.exits ?? 0)} in all)
        </caption>
        <thead>
          <tr>
            <th scope="col">reason</th>
            <th scope="col" class="num">
              exits
            </th>
            <th scope="col" class="num">
              share
            </th>
            {perCpu &&
              vm.vcpus.map((v) => (
                <th key={v.id} scope="col" class="num">
                  vcpu{v.id}
                </th>
              ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((x) => (
            <tr key={x.reason} data-reason={x.reason} data-value={x.total}>
              <th scope="row" style={{ fontWeight: "normal" }}>
                <code>{x.reason}</code>
              </th>
              <td class="num">{int(x.total)}</td>
              <td class="num">{x.share}</td>
              {perCpu &&
                x.per.map((c, k) => (
                  <td key={k} class="num">
                    {int(c)}
                  </td>
                ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
