// SPDX-License-Identifier: MIT
// The cost breakdown: cycles per event kind of the cost model (each with its default's
// source as a tooltip), the count it came from, and its share of the total.

import { COST_EVENTS } from "../../sim/cost.js";
import type { Report } from "../../sim/report.js";
import { int, pct } from "../format.js";

const DESC = new Map(COST_EVENTS.map((e) => [e.name, `${e.description}. Default ${e.cycles} cycles: ${e.source}`]));

export function CostTable({ reports, labels }: { reports: Report[]; labels: string[] }) {
  const names = [...new Set(reports.flatMap((r) => Object.keys(r.cost.breakdown)))];
  const max = Math.max(1, ...reports.flatMap((r) => Object.values(r.cost.breakdown)));
  return (
    <div class="table-wrap">
      <table class="data-table" data-testid="cost">
        <thead>
          <tr>
            <th scope="col">event</th>
            {reports.flatMap((_, i) => [
              <th scope="col" class="num" key={`c${i}`}>
                count{reports.length > 1 ? ` (${labels[i]})` : ""}
              </th>,
              <th scope="col" class="num" key={`y${i}`}>
                cycles{reports.length > 1 ? ` (${labels[i]})` : ""}
              </th>,
              <th scope="col" key={`s${i}`}>
                share
              </th>,
            ])}
          </tr>
        </thead>
        <tbody>
          {names.map((n) => (
            <tr key={n} data-cost={n}>
              <th scope="row" style={{ fontWeight: "normal" }}>
                <abbr class="counter" title={DESC.get(n) ?? ""} tabIndex={0}>
                  {n}
                </abbr>
              </th>
              {reports.flatMap((r, i) => {
                const cycles = r.cost.breakdown[n] ?? 0;
                return [
                  <td class="num" key={`c${i}`}>
                    {int(r.cost.counts[n] ?? 0)}
                  </td>,
                  <td class="num" key={`y${i}`}>
                    {int(cycles)}
                  </td>,
                  <td key={`s${i}`} style={{ minWidth: reports.length > 1 ? "64px" : "120px" }}>
                    <span class="bar" style={{ width: `${Math.round((cycles / max) * (reports.length > 1 ? 24 : 80))}px` }} />{" "}
                    {pct(cycles, r.cost.cycles)}
                  </td>,
                ];
              })}
            </tr>
          ))}
          <tr>
            <th scope="row">total</th>
            {reports.flatMap((r, i) => [
              <td class="num" key={`c${i}`} />,
              <td class="num" key={`y${i}`} data-testid={`cost-total-${i}`}>
                <strong>{int(r.cost.cycles)}</strong>
              </td>,
              <td key={`s${i}`}>100%</td>,
            ])}
          </tr>
        </tbody>
      </table>
    </div>
  );
}
