// SPDX-License-Identifier: MIT
// The translate view's quiz: three kinds of question, each generated from the model and
// checked against it: the walk's next reference (quiz_walk.ts), the next step of a real
// fault-in, and which counter moves (both from the worker's tiny run, quiz_run.ts).

import { useEffect, useRef, useState } from "preact/hooks";
import type { TranslateReport } from "../../sim/translate.js";
import { mmuWords } from "../mmu_words.js";
import { type ChainStep, type ChainVerdict, chainChoices, chainSteps, checkChain } from "../quiz_chain.js";
import { type CounterQuestion, type CounterVerdict, checkCounter, counterQuestions, NONE } from "../quiz_counters.js";
import type { QuizMmu, QuizRun } from "../quiz_run.js";
import { SimClient } from "../sim_client.js";
import type { QuizKind, QuizState } from "../url_state.js";
import { WalkQuiz } from "./quiz_walk.js";

interface Props {
  walk: TranslateReport;
  state: QuizState;
  onState: (f: (s: QuizState) => QuizState) => void;
  /** The translate view's paging mode. */
  mode: string;
}

const KINDS: { kind: QuizKind; label: string }[] = [
  { kind: "walk", label: "Next reference of the walk" },
  { kind: "fault", label: "Next step of the fault-in" },
  { kind: "counters", label: "Which counter moves?" },
];

export function QuizPanel({ walk, state, onState, mode }: Props) {
  // A link's question index applies to the first walk shown; another walk starts the quiz again.
  const first = useRef<TranslateReport | null>(null);
  useEffect(() => {
    if (first.current !== null && first.current !== walk && state.quiz === "walk") onState((s) => ({ ...s, q: 0, ok: 0 }));
    first.current ??= walk;
  }, [walk]);
  const mmu: QuizMmu = mode === "npt" || mode === "shadow" ? mode : "ept";
  const progress = { q: state.q, ok: state.ok };
  const setProgress = (p: { q: number; ok: number }) => onState((s) => ({ ...s, ...p }));
  return (
    <div>
      <fieldset class="quiz-tabs">
        <legend class="visually-hidden">Quiz</legend>
        {KINDS.map((k) => (
          <button
            key={k.kind}
            type="button"
            class={k.kind === state.quiz ? "primary" : ""}
            aria-pressed={k.kind === state.quiz}
            data-quiz-kind={k.kind}
            onClick={() => onState((s) => ({ ...s, quiz: k.kind, q: 0, ok: 0 }))}
          >
            {k.label}
          </button>
        ))}
      </fieldset>
      {state.quiz === "walk" && <WalkQuiz report={walk} progress={progress} onProgress={setProgress} shadow={mode === "shadow"} />}
      {state.quiz !== "walk" && (
        <RunQuiz kind={state.quiz} mmu={mmu} native={mode === "native"} progress={progress} onProgress={setProgress} />
      )}
    </div>
  );
}

interface RunQuizProps {
  kind: "fault" | "counters";
  mmu: QuizMmu;
  native: boolean;
  progress: { q: number; ok: number };
  onProgress: (p: { q: number; ok: number }) => void;
}

function RunQuiz({ kind, mmu, native, progress, onProgress }: RunQuizProps) {
  const [run, setRun] = useState<QuizRun | null>(null);
  const [error, setError] = useState<string | null>(null);
  const client = useRef<SimClient | null>(null);
  useEffect(() => {
    client.current ??= new SimClient();
    const c = client.current;
    setRun(null);
    const id = c.send({ type: "quiz", mmu }, (r) => {
      c.done(id);
      if (r.type === "quiz") setRun(r.run);
      else if (r.type === "error") setError(r.message);
    });
    return () => c.done(id);
  }, [mmu]);
  // Leaving the quiz (another kind or mode) ends its worker: a remount starts a fresh one.
  useEffect(() => () => client.current?.cancel(), []);
  if (error)
    return (
      <div class="error-box" role="alert">
        {error}
      </div>
    );
  if (!run) return <p class="note">Running the quiz's tiny scenario in the worker...</p>;
  const intro = (
    <p class="lead">
      Generated from a real run under {mmuWords(mmu).tables === "shadow" ? "shadow paging" : mmuWords(mmu).tables}
      {native ? " (the fault-in needs a VM: native paging has none, so this uses EPT)" : ""}: one VM mmap()s 64 KiB, writes its 16 pages,
      reads them again, and reads them once more after the host paged guest RAM out. Answers are checked against that run.
    </p>
  );
  return kind === "fault" ? (
    <>
      {intro}
      <FaultQuiz steps={chainSteps(run.faultIn, mmu)} progress={progress} onProgress={onProgress} />
    </>
  ) : (
    <>
      {intro}
      <CounterQuiz questions={counterQuestions(run)} progress={progress} onProgress={onProgress} />
    </>
  );
}

function Score({ progress, total, what }: { progress: { q: number; ok: number }; total: number; what: string }) {
  return (
    <div class="quiz-bar">
      <strong data-testid="quiz-score">
        Score {progress.ok}/{Math.min(progress.q, total)}
      </strong>
      <span data-testid="quiz-pos">{progress.q >= total ? `all ${total} answered` : `${what} ${progress.q + 1} of ${total}`}</span>
    </div>
  );
}

function FaultQuiz({
  steps,
  progress,
  onProgress,
}: {
  steps: ChainStep[];
  progress: { q: number; ok: number };
  onProgress: RunQuizProps["onProgress"];
}) {
  const [verdict, setVerdict] = useState<ChainVerdict | null>(null);
  const total = steps.length - 1;
  const q = Math.min(progress.q, total);
  const shown = steps.slice(0, q + 1);
  const answer = (key: string) => {
    const v = checkChain(steps, q + 1, key);
    setVerdict(v);
    onProgress({ q: q + 1, ok: progress.ok + (v.right ? 1 : 0) });
  };
  return (
    <div class="quiz" data-testid="fault-quiz">
      <Score progress={progress} total={total} what="step" />
      <ol class="quiz-chain">
        {shown.map((s, i) => (
          <li key={i} class={i === shown.length - 1 ? "current" : ""}>
            <strong>{s.words}</strong>
            {s.count > 1 ? ` (x${s.count})` : ""} <code>{s.key}</code>
            <div class="side-sub mono">{s.detail}</div>
          </li>
        ))}
      </ol>
      {verdict && (
        <Feedback right={verdict.right} text={verdict.right ? `"${verdict.answer.words}": ${verdict.answer.reason}.` : verdict.why} />
      )}
      {q < total ? (
        <fieldset class="quiz-tables">
          <legend>What happens next?</legend>
          {chainChoices(steps).map((c) => (
            <button key={c.key} type="button" data-quiz-answer={c.key} onClick={() => answer(c.key)}>
              {c.words}
            </button>
          ))}
        </fieldset>
      ) : (
        <p class="note" data-testid="quiz-done">
          The whole fault-in, from the exit to the guest's resume: {progress.ok} of {total} right.
        </p>
      )}
    </div>
  );
}

function CounterQuiz({
  questions,
  progress,
  onProgress,
}: {
  questions: CounterQuestion[];
  progress: { q: number; ok: number };
  onProgress: RunQuizProps["onProgress"];
}) {
  const [verdict, setVerdict] = useState<{ v: CounterVerdict; q: CounterQuestion } | null>(null);
  const total = questions.length;
  const q = Math.min(progress.q, total);
  const cur = questions[q];
  const answer = (id: string) => {
    const v = checkCounter(cur!, id);
    setVerdict({ v, q: cur! });
    onProgress({ q: q + 1, ok: progress.ok + (v.right ? 1 : 0) });
  };
  return (
    <div class="quiz" data-testid="counter-quiz">
      <Score progress={progress} total={total} what="question" />
      {verdict && (
        <>
          <Feedback right={verdict.v.right} text={verdict.v.why} />
          <table class="data-table" data-testid="counter-deltas">
            <caption>What the run counted while {verdict.q.situation}</caption>
            <tbody>
              {verdict.q.options
                .filter((o) => o.id !== NONE)
                .map((o) => (
                  <tr key={o.id}>
                    <th scope="row">{o.label}</th>
                    <td class="num">{o.delta.toLocaleString("en-US")}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </>
      )}
      {cur ? (
        <fieldset class="quiz-tables">
          <legend>Which counter moves when {cur.situation}?</legend>
          {cur.options.map((o) => (
            <button key={o.id} type="button" data-quiz-answer={o.id} onClick={() => answer(o.id)}>
              {o.label}
            </button>
          ))}
        </fieldset>
      ) : (
        <p class="note" data-testid="quiz-done">
          All {total} questions answered: {progress.ok} right.
        </p>
      )}
    </div>
  );
}

function Feedback({ right, text }: { right: boolean; text: string }) {
  return (
    <div class={right ? "quiz-right" : "quiz-wrong"} role="status" data-testid="quiz-feedback">
      <strong>{right ? "Right" : "Not quite"}:</strong> <span data-testid="quiz-why">{text}</span>
    </div>
  );
}
