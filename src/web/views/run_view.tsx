// SPDX-License-Identifier: MIT
// The run view: edit or choose a scenario, validate it as you type (the schema's problems
// inline, with line numbers), run it in the worker with progress and cancel, then read the
// counters, the charts and the cost breakdown; export the report (the same JSON as
// `memvirt run --json`) and the charts. Optionally run two variants side by side, as
// `--compare` does: the same scenario with one key set to two values.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { parse as parseYaml } from "yaml";
import { COST_EVENTS } from "../../sim/cost.js";
import type { Report } from "../../sim/report.js";
import { DEFAULT_SCENARIO_YAML, loadScenario, ScenarioError, type ScenarioIssue } from "../../sim/scenario_load.js";
import type { ViewProps } from "../app.js";
import { CHARTS, Chart, download } from "../components/charts.js";
import { CostTable } from "../components/cost.js";
import { CountersTables } from "../components/counters.js";
import { ScenarioEditor } from "../components/editor.js";
import { EXAMPLES } from "../examples.js";
import { bundledFiles } from "../example_files.js";
import { compareOverrides } from "../../sim/compare_keys.js";
import type { Scenario } from "../../sim/scenario_schema.js";
import { RunSummaries } from "../components/run_summary.js";
import { bytes, int } from "../format.js";
import { SimClient } from "../sim_client.js";
import { packText, unpackText } from "../url_state.js";
import { Term } from "../components/term.js";

const COST_NAMES = COST_EVENTS.map((e) => e.name);
const BUILT_IN = "built-in";

type Status = "idle" | "running" | "done" | "error" | "cancelled" | "invalid";

interface Compare {
  on: boolean;
  key: string;
  a: string;
  b: string;
}

/** The scenario `text` loads to, or undefined if it does not validate. */
function scenarioOf(text: string, fileName: string, overrides?: Record<string, unknown>): Scenario | undefined {
  try {
    return loadScenario(text, fileName, { costEvents: COST_NAMES, ...(overrides ? { overrides } : {}) });
  } catch {
    return undefined;
  }
}

/** Validates `text` as the worker will; returns the problems (empty when valid). */
export function validate(text: string, fileName: string, overrides?: Record<string, unknown>): ScenarioIssue[] {
  try {
    loadScenario(text, fileName, { costEvents: COST_NAMES, ...(overrides ? { overrides } : {}) });
    return [];
  } catch (e) {
    if (e instanceof ScenarioError) return [...e.issues];
    return [{ path: "", line: 1, column: 1, message: (e as Error).message }];
  }
}

function scalar(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

export function RunView({ initial, setParams }: ViewProps) {
  const [text, setText] = useState(() => (initial.s ? (unpackText(initial.s) ?? DEFAULT_SCENARIO_YAML) : DEFAULT_SCENARIO_YAML));
  const [fileName, setFileName] = useState(() => initial.f ?? (initial.s ? "scenario.yaml" : BUILT_IN));
  const [seed, setSeed] = useState(initial.seed ?? "");
  const [cmp, setCmp] = useState<Compare>({
    on: initial.cmp !== undefined,
    key: initial.cmp ?? "mmu",
    a: initial.a ?? "ept",
    b: initial.b ?? "npt",
  });
  const [issues, setIssues] = useState<ScenarioIssue[]>([]);
  const [status, setStatus] = useState<Status>("idle");
  const [message, setMessage] = useState("");
  const [progress, setProgress] = useState<{ done: number; total: number }[]>([]);
  const [reports, setReports] = useState<Report[] | null>(null);
  const [labels, setLabels] = useState<string[]>(["value"]);
  const [scenarios, setScenarios] = useState<(Scenario | undefined)[]>([]);
  const [files, setFiles] = useState<Record<string, Uint8Array>>({});
  const [elapsed, setElapsed] = useState(0);
  const clients = useRef<SimClient[]>([]);
  const started = useRef(0);

  // Validate as you type (the worker validates again before it runs).
  useEffect(() => {
    const t = setTimeout(() => {
      const found = validate(text, fileName);
      setIssues(found);
      // Results of an earlier text must not stand beside a scenario that no longer validates.
      if (found.length > 0 && (reports !== null || clients.current.length > 0)) {
        for (const c of clients.current) c.cancel();
        clients.current = [];
        setReports(null);
        setStatus("invalid");
        setMessage(
          "The scenario was edited and no longer validates: the earlier results were cleared. Fix the problems listed above the editor and run again.",
        );
      }
    }, 150);
    return () => clearTimeout(t);
  }, [text, fileName]);

  // Keep the link current: scenario (unless it is the built-in one), seed, compare.
  useEffect(() => {
    const t = setTimeout(() => {
      const p: Record<string, string> = {};
      if (text !== DEFAULT_SCENARIO_YAML) {
        p.s = packText(text);
        p.f = fileName;
      }
      if (seed.trim() !== "") p.seed = seed.trim();
      if (cmp.on) Object.assign(p, { cmp: cmp.key, a: cmp.a, b: cmp.b });
      setParams(p);
    }, 300);
    return () => clearTimeout(t);
  }, [text, fileName, seed, cmp]);

  const seedValue = (): number | undefined | "bad" => {
    const t = seed.trim().replaceAll("_", "");
    if (t === "") return undefined;
    return /^[0-9]+$/.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : "bad";
  };

  const run = () => {
    const sv = seedValue();
    if (sv === "bad") {
      setStatus("invalid");
      setMessage(`seed: '${seed}' is not a whole number; give one like 42, or leave it empty for the scenario's seed`);
      return;
    }
    // A short key (`mmu`) applies to every VM, as `memvirt run --compare mmu=ept,npt` does.
    const vmCount = scenarioOf(text, fileName)?.vms.length ?? 1;
    const key = cmp.key.trim();
    const variants: { label: string; overrides?: Record<string, unknown> }[] = cmp.on
      ? [
          { label: `${key}=${cmp.a}`, overrides: compareOverrides(key, scalar(cmp.a), vmCount) },
          { label: `${key}=${cmp.b}`, overrides: compareOverrides(key, scalar(cmp.b), vmCount) },
        ]
      : [{ label: "value" }];
    // Never send a scenario that does not validate: show why instead.
    for (const v of variants) {
      const found = validate(text, fileName, v.overrides);
      if (found.length > 0) {
        setIssues(found);
        setStatus("invalid");
        setMessage(
          `The scenario${cmp.on ? ` (variant ${v.label})` : ""} does not validate: ${found.length} problem${found.length === 1 ? "" : "s"}, listed above the editor (each one takes you to its line). Nothing ran.`,
        );
        return;
      }
    }
    for (const c of clients.current) c.cancel();
    clients.current = variants.map(() => new SimClient());
    setReports(null);
    setLabels(variants.map((v) => v.label));
    setScenarios(variants.map((v) => scenarioOf(text, fileName, v.overrides)));
    setStatus("running");
    setMessage("");
    setProgress(variants.map(() => ({ done: 0, total: 1 })));
    started.current = performance.now();
    const got: (Report | null)[] = variants.map(() => null);
    const mine = clients.current;
    // The bundled examples' trace files come with the page; files the user attached take precedence.
    bundledFiles(text).then(
      (bundled) => {
        if (clients.current === mine) sendAll({ ...bundled, ...files });
      },
      (e: Error) => {
        setStatus("error");
        setMessage(e.message);
      },
    );
    const sendAll = (files: Record<string, Uint8Array>) =>
      variants.forEach((v, i) => {
        const c = clients.current[i]!;
        c.send(
          {
            type: "run",
            text,
            fileName,
            ...(sv !== undefined ? { seed: sv } : {}),
            ...(v.overrides ? { overrides: v.overrides } : {}),
            files,
          },
          (r) => {
            if (r.type === "progress") setProgress((old) => old.map((p, k) => (k === i ? { done: r.done, total: r.total } : p)));
            else if (r.type === "report") {
              got[i] = r.report;
              if (got.every((x) => x !== null)) {
                setReports(got as Report[]);
                setStatus("done");
                setElapsed(performance.now() - started.current);
              }
            } else if (r.type === "scenario-error") {
              setIssues(r.issues);
              setStatus("invalid");
              setMessage("The scenario does not validate; nothing ran.");
            } else if (r.type === "error") {
              for (const o of clients.current) o.cancel();
              setStatus("error");
              setMessage(r.message);
            }
          },
        );
      });
  };

  const cancel = () => {
    for (const c of clients.current) c.cancel();
    clients.current = [];
    setStatus("cancelled");
    setMessage("Cancelled: the worker was stopped; nothing was kept.");
  };

  useEffect(
    () => () => {
      for (const c of clients.current) c.cancel();
    },
    [],
  );

  const pick = (name: string) => {
    if (name === BUILT_IN) {
      setText(DEFAULT_SCENARIO_YAML);
      setFileName(BUILT_IN);
    } else if (EXAMPLES[name]) {
      setText(EXAMPLES[name]);
      setFileName(name);
    }
  };

  const onFiles = async (list: FileList | null) => {
    const out: Record<string, Uint8Array> = {};
    for (const f of Array.from(list ?? [])) out[f.name] = new Uint8Array(await f.arrayBuffer());
    setFiles(out);
  };

  const done = progress.reduce((a, p) => a + p.done, 0);
  const total = progress.reduce((a, p) => a + p.total, 0);
  const exportJson = (r: Report, label: string) =>
    download(
      `memvirt-report${label === "value" ? "" : `-${label.replace(/[^A-Za-z0-9]+/g, "_")}`}.json`,
      URL.createObjectURL(new Blob([`${JSON.stringify(r, null, 2)}\n`], { type: "application/json" })),
    );

  return (
    <div>
      <h2>Run a scenario</h2>
      <p class="lead">
        The scenario runs in a Web Worker with the library the CLI uses: the same scenario and seed give the numbers{" "}
        <code>memvirt run --json</code> prints. The link in the address bar holds the scenario and the seed.
      </p>
      <div class={`run-layout${reports && reports.length > 1 ? " wide" : ""}`}>
        <div>
          <div class="controls">
            <label>
              Scenario
              <select
                value={fileName === BUILT_IN || EXAMPLES[fileName] ? fileName : ""}
                onChange={(e) => pick((e.target as HTMLSelectElement).value)}
              >
                <option value={BUILT_IN}>built-in story (npm start)</option>
                {Object.keys(EXAMPLES).map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
                <option value="" disabled>
                  (edited)
                </option>
              </select>
            </label>
            <label>
              Seed (empty: the scenario's)
              <input type="text" inputMode="numeric" size={8} value={seed} onInput={(e) => setSeed((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Trace files for trace steps
              <input type="file" multiple onChange={(e) => onFiles((e.target as HTMLInputElement).files)} />
            </label>
          </div>
          <div class="player">
            <button type="button" class="primary" data-testid="run-button" onClick={run} disabled={status === "running"}>
              Run
            </button>
            <button type="button" data-testid="cancel-button" onClick={cancel} disabled={status !== "running"}>
              Cancel
            </button>
            {status === "running" && (
              <span>
                <progress data-testid="run-progress" max={total} value={done} aria-label="Run progress" />{" "}
                {Math.floor((done / Math.max(1, total)) * 100)}% ({int(done)} of {int(total)} accesses)
              </span>
            )}
          </div>
          <div data-testid="run-status" data-state={status} aria-live="polite">
            {message && <div class={status === "cancelled" ? "note" : "error-box"}>{message}</div>}
          </div>
          <ScenarioEditor
            value={text}
            fileName={fileName}
            issues={issues}
            onInput={(t) => {
              setText(t);
              if (fileName === BUILT_IN || EXAMPLES[fileName]) setFileName("scenario.yaml");
            }}
          />
          <fieldset style={{ border: "1px solid var(--line)", borderRadius: "6px", margin: "8px 0" }}>
            <legend>
              <label class="inline">
                <input type="checkbox" checked={cmp.on} onChange={(e) => setCmp({ ...cmp, on: (e.target as HTMLInputElement).checked })} />{" "}
                Compare two variants side by side
              </label>
            </legend>
            <div class="controls" style={{ marginBottom: 0 }}>
              <label>
                Key
                <input
                  type="text"
                  class="mono"
                  size={16}
                  value={cmp.key}
                  onInput={(e) => setCmp({ ...cmp, key: (e.target as HTMLInputElement).value })}
                />
              </label>
              <label>
                Value A
                <input
                  type="text"
                  class="mono"
                  size={8}
                  value={cmp.a}
                  onInput={(e) => setCmp({ ...cmp, a: (e.target as HTMLInputElement).value })}
                />
              </label>
              <label>
                Value B
                <input
                  type="text"
                  class="mono"
                  size={8}
                  value={cmp.b}
                  onInput={(e) => setCmp({ ...cmp, b: (e.target as HTMLInputElement).value })}
                />
              </label>
            </div>
          </fieldset>
        </div>
        <div>
          {reports ? (
            <Results reports={reports} labels={labels} scenarios={scenarios} elapsed={elapsed} onExport={exportJson} />
          ) : (
            <p class="note">
              Press Run. The built-in story (a 512 MiB guest on a 256 MiB host, pushed into <Term id="swap">swap</Term> and back) takes a
              few seconds.
            </p>
          )}
        </div>
      </div>
    </div>
  );
}

function Results({
  reports,
  labels,
  scenarios,
  elapsed,
  onExport,
}: {
  reports: Report[];
  labels: string[];
  scenarios: (Scenario | undefined)[];
  elapsed: number;
  onExport: (r: Report, label: string) => void;
}) {
  const specs = useMemo(() => CHARTS, []);
  return (
    <div data-testid="results">
      <h3>Results</h3>
      {reports.map((r, i) => (
        <div class="summary-line" key={i}>
          {reports.length > 1 && <strong>{labels[i]}</strong>}
          <span class="kv">
            accesses <b>{int(r.accesses)}</b>
          </span>
          <span class="kv">
            cycles <b>{int(r.cost.cycles)}</b>
          </span>
          <span class="kv">
            host free <b>{bytes(r.host.freeBytes)}</b>
          </span>
          <span class="kv">
            swap used <b>{bytes(r.host.swapUsedBytes)}</b>
          </span>
          <span class={r.check.dataErrors + r.check.invariantViolations === 0 ? "ok" : "fail"}>
            {r.check.dataErrors + r.check.invariantViolations === 0
              ? "check: every read returned what was written, no stale mapping"
              : `check: ${r.check.dataErrors} data errors, ${r.check.invariantViolations} invariant violations`}
          </span>
          <button type="button" onClick={() => onExport(r, labels[i]!)}>
            Export JSON{reports.length > 1 ? ` (${labels[i]})` : ""}
          </button>
        </div>
      ))}
      <p style={{ fontSize: "12px", color: "var(--muted)", margin: "0 0 6px" }}>Ran in {(elapsed / 1000).toFixed(1)} s in this browser.</p>
      <RunSummaries reports={reports} labels={labels} scenarios={scenarios} />
      {specs.map((s) => (
        <Chart key={s.id} spec={s} reports={reports} labels={labels} />
      ))}
      <h3>Cost breakdown (cycles, by the cost model)</h3>
      <CostTable reports={reports} labels={labels} />
      <h3>Counters</h3>
      <CountersTables reports={reports} labels={labels} />
    </div>
  );
}
