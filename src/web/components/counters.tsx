// SPDX-License-Identifier: MIT
// The counters of a report, under their Linux names, grouped as the CLI groups them: host
// /proc/vmstat, and per VM the KVM statistics, the guest kernel, QEMU and the hardware.
// Each name carries its declared description as a tooltip (and, on request, as a column,
// for keyboards and touch screens). With two reports, the columns compare them.

import { useState } from "preact/hooks";
import { type CounterDesc, counterList, counterMeaning } from "../../hw/counters.js";
import { HW_COUNTERS } from "../../hw/mmu.js";
import { GUEST_COUNTERS, SELFTEST_COUNTERS } from "../../guest/stats.js";
import { HOST_COUNTERS } from "../../host/vmstat.js";
import { VCPU_COUNTERS, VM_COUNTERS } from "../../kvm/stats.js";
import type { Report } from "../../sim/report.js";
import { CHECK_FIGURES, HW_FIGURES, QEMU_FIGURES, VIRT_MAP_FIGURES } from "../../sim/report_figures.js";
import { int } from "../format.js";

export interface CounterRow {
  /** Stable key: `host.pgfault`, `vm0.kvm.pf_fixed`... (the browser test reads it). */
  key: string;
  name: string;
  description: string;
  values: number[];
}

export interface CounterGroup {
  title: string;
  rows: CounterRow[];
}

function descMap(...lists: (readonly CounterDesc[])[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of lists) for (const d of l) if (!m.has(d.name)) m.set(d.name, `${counterMeaning(d)} (${d.kind}, ${d.unit})`);
  return m;
}

const HOST = descMap(HOST_COUNTERS);
const KVM = descMap(VM_COUNTERS, VCPU_COUNTERS);
const GUEST = descMap(GUEST_COUNTERS, SELFTEST_COUNTERS, counterList(VIRT_MAP_FIGURES));
const HW = descMap(HW_COUNTERS, counterList(HW_FIGURES));
const QEMU = descMap(counterList(QEMU_FIGURES));
const CHECK = descMap(counterList(CHECK_FIGURES));

/** Rows for `descs`' order first, then any other number in `objs` (so every counter the report has is shown). */
function rows(prefix: string, descs: Map<string, string>, objs: Record<string, unknown>[]): CounterRow[] {
  const names: string[] = [];
  for (const n of descs.keys()) if (objs.some((o) => typeof o[n] === "number")) names.push(n);
  for (const o of objs) for (const [k, v] of Object.entries(o)) if (typeof v === "number" && !names.includes(k)) names.push(k);
  return names.map((name) => ({
    key: `${prefix}${name}`,
    name,
    description: descs.get(name) ?? "(no description registered)",
    values: objs.map((o) => (typeof o[name] === "number" ? (o[name] as number) : Number.NaN)),
  }));
}

/** The groups of counters of one or more reports (run side by side). */
export function counterGroups(reports: Report[]): CounterGroup[] {
  const groups: CounterGroup[] = [
    {
      title: "Host /proc/vmstat",
      rows: rows(
        "host.",
        HOST,
        reports.map((r) => r.host.vmstat),
      ),
    },
  ];
  const nVms = Math.max(...reports.map((r) => r.vms.length));
  for (let i = 0; i < nVms; i++) {
    const vms = reports.map((r) => r.vms[i]);
    const name = vms.find((v) => v)?.name ?? `vm${i}`;
    const pick = <T,>(f: (v: NonNullable<(typeof vms)[number]>) => T) => vms.map((v) => (v ? f(v) : ({} as T)));
    groups.push({
      title: `${name}: KVM (VM + sum over vCPUs)`,
      rows: rows(
        `vm${i}.kvm.`,
        KVM,
        pick((v) => v.stats),
      ),
    });
    groups.push({
      title: `${name}: guest kernel`,
      rows: rows(
        `vm${i}.guest.`,
        GUEST,
        pick((v) => v.guest),
      ),
    });
    groups.push({
      title: `${name}: QEMU process`,
      rows: rows(
        `vm${i}.qemu.`,
        QEMU,
        pick((v) => v.qemu),
      ),
    });
    const hw = pick((v) => {
      const { references: _r, ...rest } = v.hw;
      return rest as Record<string, unknown>;
    });
    groups.push({ title: `${name}: hardware (TLBs, walks)`, rows: rows(`vm${i}.hw.`, HW, hw) });
  }
  groups.push({
    title: "Checker",
    rows: rows(
      "check.",
      CHECK,
      reports.map((r) => ({ dataErrors: r.check.dataErrors, invariantViolations: r.check.invariantViolations })),
    ),
  });
  return groups;
}

export function CountersTables({ reports, labels }: { reports: Report[]; labels: string[] }) {
  const [filter, setFilter] = useState("");
  const [hideZero, setHideZero] = useState(false);
  const [showDesc, setShowDesc] = useState(false);
  const groups = counterGroups(reports);
  const f = filter.trim().toLowerCase();
  const compare = reports.length > 1;
  return (
    <div>
      <div class="controls">
        <label>
          Filter counters
          <input
            type="text"
            value={filter}
            placeholder="e.g. swp, pf_, tlb"
            onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          />
        </label>
        <label class="inline">
          <input type="checkbox" checked={hideZero} onChange={(e) => setHideZero((e.target as HTMLInputElement).checked)} />
          hide zeros
        </label>
        <label class="inline">
          <input type="checkbox" checked={showDesc} onChange={(e) => setShowDesc((e.target as HTMLInputElement).checked)} />
          show descriptions
        </label>
      </div>
      <div class="counter-groups">
        {groups.map((g) => {
          const shown = g.rows.filter(
            (r) =>
              (f === "" || r.name.toLowerCase().includes(f) || r.description.toLowerCase().includes(f)) &&
              (!hideZero || r.values.some((v) => v !== 0)),
          );
          if (shown.length === 0) return null;
          return (
            <div class="table-wrap" key={g.title}>
              <h3>{g.title}</h3>
              <table class="data-table" data-testid="counters">
                <thead>
                  <tr>
                    <th scope="col">counter</th>
                    {labels.map((l) => (
                      <th scope="col" class="num" key={l}>
                        {l}
                      </th>
                    ))}
                    {compare && (
                      <th scope="col" class="num">
                        {labels[1]} / {labels[0]}
                      </th>
                    )}
                    {showDesc && <th scope="col">meaning</th>}
                  </tr>
                </thead>
                <tbody>
                  {shown.map((r) => (
                    <tr key={r.key} data-counter={r.key} data-value={String(r.values[0])}>
                      <th scope="row" style={{ fontWeight: "normal" }}>
                        <abbr class="counter" title={r.description} tabIndex={0}>
                          {r.name}
                        </abbr>
                      </th>
                      {r.values.map((v, i) => (
                        <td class="num" key={i} data-value={String(v)}>
                          {Number.isNaN(v) ? "-" : int(v)}
                        </td>
                      ))}
                      {compare && <td class="num">{ratio(r.values[0]!, r.values[1]!)}</td>}
                      {showDesc && <td class="desc">{r.description}</td>}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        })}
      </div>
    </div>
  );
}

function ratio(a: number, b: number): string {
  if (Number.isNaN(a) || Number.isNaN(b)) return "-";
  if (a === b) return "=";
  if (a === 0) return "new";
  return `${(b / a).toFixed(b / a >= 10 ? 0 : 2)}x`;
}
