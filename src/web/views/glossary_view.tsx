// SPDX-License-Identifier: MIT
// The glossary: every term the page uses, in plain words, with the kernel (or QEMU) file and
// function where it lives. `#glossary/<id>` opens at that entry; a filter narrows the list.

import { useEffect, useState } from "preact/hooks";
import type { ViewProps } from "../app.js";
import { Term } from "../components/term.js";
import { GLOSSARY, isTermId, TERM_IDS, type TermId } from "../glossary.js";

function matches(id: TermId, q: string): boolean {
  if (q === "") return true;
  const g = GLOSSARY[id];
  return `${id} ${g.term} ${g.aka ?? ""} ${g.text} ${g.kernel}`.toLowerCase().includes(q);
}

export function GlossaryView({ initial, active }: ViewProps) {
  const wanted = initial.term ?? "";
  const [filter, setFilter] = useState("");
  const q = filter.trim().toLowerCase();
  const shown = TERM_IDS.filter((id) => matches(id, q));

  // Opened at an entry: bring it into view (once the page is visible) and give it focus for keyboard users.
  useEffect(() => {
    if (!active || !isTermId(wanted)) return;
    const el = document.getElementById(`g-${wanted}`);
    el?.scrollIntoView({ block: "start" });
    el?.focus({ preventScroll: true });
  }, [wanted, active]);

  return (
    <div class="glossary" data-testid="glossary">
      <h2>Glossary</h2>
      <p class="lead">
        The words the page uses, in plain terms, and where each lives in Linux, KVM or QEMU. Each entry has its own link; underlined terms
        elsewhere in the page lead here. <a href="#home">Back to the start page</a>.
      </p>
      {wanted !== "" && !isTermId(wanted) && (
        <div class="error-box" role="alert">
          No entry named "{wanted}": pick one below.
        </div>
      )}
      <label class="gloss-filter">
        Filter{" "}
        <input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} placeholder="e.g. swap" />
      </label>
      <nav class="gloss-index" aria-label="Glossary index">
        {shown.map((id) => (
          <a key={id} href={`#glossary/${id}`}>
            {GLOSSARY[id].term}
          </a>
        ))}
      </nav>
      <dl class="gloss-list">
        {shown.map((id) => {
          const g = GLOSSARY[id];
          return (
            <div key={id} id={`g-${id}`} class={`gloss-entry${id === wanted ? " current" : ""}`} data-entry={id} tabIndex={-1}>
              <dt>
                <a href={`#glossary/${id}`} class="gloss-term">
                  {g.term}
                </a>
                {g.aka && <span class="gloss-aka"> ({g.aka})</span>}
              </dt>
              <dd>
                <p class="gloss-text">{g.text}</p>
                <p class="gloss-kernel">
                  Where it lives: <code>{g.kernel}</code>
                </p>
                {g.see && (
                  <p class="gloss-see">
                    See also:{" "}
                    {g.see.map((s, i) => (
                      <span key={s}>
                        {i > 0 && ", "}
                        {isTermId(s) ? <Term id={s} /> : s}
                      </span>
                    ))}
                  </p>
                )}
              </dd>
            </div>
          );
        })}
      </dl>
      {shown.length === 0 && <p class="note">No term matches "{filter}".</p>}
    </div>
  );
}
