// SPDX-License-Identifier: MIT
// The scenario editor: a textarea with a line-number gutter that marks the lines the
// schema complains about, and the list of problems (each one moves the cursor there).

import { useRef } from "preact/hooks";
import type { ScenarioIssue } from "../../sim/scenario_load.js";

export interface EditorProps {
  value: string;
  onInput: (text: string) => void;
  issues: readonly ScenarioIssue[];
  fileName: string;
}

export function ScenarioEditor({ value, onInput, issues, fileName }: EditorProps) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLPreElement>(null);
  const lines = value.split("\n").length;
  const bad = new Set(issues.map((i) => i.line));

  const goTo = (issue: ScenarioIssue) => {
    const ta = area.current;
    if (!ta) return;
    const rows = value.split("\n");
    let off = 0;
    for (let i = 0; i < issue.line - 1 && i < rows.length; i++) off += rows[i]!.length + 1;
    off += Math.max(0, issue.column - 1);
    ta.focus();
    ta.setSelectionRange(off, off);
    ta.scrollTop = Math.max(0, (issue.line - 5) * 18);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    // Tab indents (YAML wants spaces); Escape then Tab leaves the editor, as in most code editors.
    if (e.key === "Tab" && !e.shiftKey && !escaped.current) {
      const ta = e.target as HTMLTextAreaElement;
      e.preventDefault();
      const { selectionStart: a, selectionEnd: b } = ta;
      const next = `${value.slice(0, a)}  ${value.slice(b)}`;
      onInput(next);
      requestAnimationFrame(() => ta.setSelectionRange(a + 2, a + 2));
    }
    escaped.current = e.key === "Escape";
  };
  const escaped = useRef(false);

  return (
    <div>
      <div id="scenario-issues" aria-live="polite">
        {issues.length > 0 && (
          <ul class="issues" data-testid="scenario-issues">
            {issues.map((i, k) => (
              <li key={k}>
                <button type="button" onClick={() => goTo(i)}>
                  <strong>
                    line {i.line}, column {i.column}
                  </strong>
                  {i.path ? (
                    <>
                      {" "}
                      <code>{i.path}</code>
                    </>
                  ) : null}
                  : {i.message}
                </button>
              </li>
            ))}
          </ul>
        )}
      </div>
      <div class="editor">
        <pre class="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => (
            <div key={i}>{bad.has(i + 1) ? <span class="bad">{i + 1}</span> : i + 1}</div>
          ))}
        </pre>
        <textarea
          ref={area}
          aria-label={`Scenario ${fileName} (YAML or JSON). Tab indents; press Escape, then Tab, to leave the editor.`}
          aria-invalid={issues.length > 0}
          aria-describedby="scenario-issues"
          spellcheck={false}
          value={value}
          onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
          onKeyDown={onKeyDown}
          onScroll={(e) => {
            if (gutter.current) gutter.current.scrollTop = (e.target as HTMLTextAreaElement).scrollTop;
          }}
        />
      </div>
    </div>
  );
}
