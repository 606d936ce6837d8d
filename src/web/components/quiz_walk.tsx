// SPDX-License-Identifier: MIT
// The walk quiz: the translate grid with its references hidden; for each one the student
// picks a table and a cell, the page checks the pick against the model's next reference
// (quiz_walk.ts), scores it, reveals the reference and explains a wrong pick.

import { useEffect, useMemo, useState } from "preact/hooks";
import type { TranslateReport } from "../../sim/translate.js";
import { entryHex } from "../format.js";
import { checkWalk, tableChoices, tableLabel, type WalkVerdict } from "../quiz_walk.js";
import { gridFor } from "../translate_grid.js";

export interface QuizProgress {
  /** References answered (the next question's index). */
  q: number;
  /** Of those, answered right. */
  ok: number;
}

interface Props {
  report: TranslateReport;
  progress: QuizProgress;
  onProgress: (p: QuizProgress) => void;
  shadow: boolean;
}

export function WalkQuiz({ report, progress, onProgress, shadow }: Props) {
  const grid = useMemo(() => gridFor(report), [report]);
  const [table, setTable] = useState<string | null>(null);
  const [cell, setCell] = useState<[number, number] | null>(null);
  const [verdict, setVerdict] = useState<WalkVerdict | null>(null);
  // Another walk (new settings): nothing picked, no verdict about the old one.
  useEffect(() => {
    setTable(null);
    setCell(null);
    setVerdict(null);
  }, [report]);
  const total = report.steps.length;
  const q = Math.min(progress.q, total);
  const done = q >= total;
  const at = new Map<string, number>();
  for (const [i, c] of grid.cells.entries()) at.set(`${c.row},${c.col}`, i);

  const check = () => {
    if (table === null || cell === null || done) return;
    const v = checkWalk(report, q, { table, row: cell[0], col: cell[1] });
    setVerdict(v);
    setTable(null);
    setCell(null);
    onProgress({ q: q + 1, ok: progress.ok + (v.right ? 1 : 0) });
  };
  const restart = () => {
    setVerdict(null);
    onProgress({ q: 0, ok: 0 });
  };

  return (
    <div class="quiz" data-testid="walk-quiz">
      <p class="lead">
        Predict each memory reference before it is revealed: which table the hardware reads next
        {shadow ? " (under shadow paging: the guest entries KVM reads in software, then the data)" : ""}, and where it goes on the grid. The
        answer is the model's own next reference.
      </p>
      <div class="quiz-bar">
        <strong data-testid="quiz-score">
          Score {progress.ok}/{q}
        </strong>
        <span data-testid="quiz-pos">{done ? `all ${total} references answered` : `reference ${q + 1} of ${total}`}</span>
        <button type="button" onClick={restart} data-testid="quiz-restart">
          Start again
        </button>
      </div>
      {!done && (
        <fieldset class="quiz-tables">
          <legend>Reference {q + 1} reads which table?</legend>
          {tableChoices(report).map((k) => (
            <button
              key={k}
              type="button"
              class={table === k ? "primary" : ""}
              aria-pressed={table === k}
              data-quiz-table={k}
              onClick={() => setTable(k)}
            >
              {tableLabel(report, k)}
            </button>
          ))}
          <span class="quiz-hint">{cell ? `cell: row ${cell[0] + 1}, column ${cell[1] + 1}` : "then click its cell on the grid"}</span>
          <button type="button" class="primary" data-testid="quiz-check" disabled={table === null || cell === null} onClick={check}>
            Check
          </button>
        </fieldset>
      )}
      {verdict && (
        <div class={verdict.right ? "quiz-right" : "quiz-wrong"} role="status" data-testid="quiz-feedback">
          <strong>{verdict.right ? "Right" : "Not quite"}:</strong> reference {q} is {tableLabel(report, verdict.answer.table)} (row{" "}
          {verdict.answer.row + 1}, column {verdict.answer.col + 1}). {!verdict.right && <span data-testid="quiz-why">{verdict.why}</span>}
        </div>
      )}
      <div class="walk-wrap">
        <table class="walk quiz-grid" aria-label="The walk: pick the cell of the next reference">
          <thead>
            <tr>
              <th scope="col">{grid.cols > 1 ? "guest-physical address being translated" : "table"}</th>
              {(shadow ? ["guest entry (read by KVM) / data"] : grid.colLabels).map((l) => (
                <th key={l} scope="col">
                  {l}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {Array.from({ length: grid.rows }, (_, r) => (
              <tr key={r}>
                <th scope="row" class="rowlabel">
                  {grid.rowLabels[r]}
                </th>
                {Array.from({ length: grid.cols }, (_, c) => {
                  const i = at.get(`${r},${c}`);
                  if (i !== undefined && i < q) {
                    const st = grid.cells[i]!.step;
                    return (
                      <td key={c} class={`filled ${st.kind}${i === q - 1 ? " current" : ""}`} data-step={i + 1} data-filled="1">
                        <div>
                          <span class="stepno">{i + 1}</span>
                          <span class="tname">{st.kind === "data" ? "data access" : st.table}</span>
                        </div>
                        {st.kind !== "data" ? <div class="mono hex">{entryHex(st.lo, st.hi)}</div> : <div class="bits">hpa {st.hpa}</div>}
                      </td>
                    );
                  }
                  const picked = cell !== null && cell[0] === r && cell[1] === c;
                  return (
                    <td key={c} class={picked ? "quiz-picked" : ""}>
                      <button
                        type="button"
                        class="quiz-cell"
                        disabled={done}
                        aria-pressed={picked}
                        data-quiz-cell={`${r},${c}`}
                        aria-label={`row ${r + 1}, column ${c + 1}`}
                        onClick={() => setCell([r, c])}
                      >
                        {picked ? "your pick" : ""}
                      </button>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {done && (
        <p class="note" data-testid="quiz-done">
          All {total} references answered: {progress.ok} of {total} right.
        </p>
      )}
    </div>
  );
}
