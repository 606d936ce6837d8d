// SPDX-License-Identifier: MIT
// "path N" where the story says it: a small button that tells the path's title and one-line
// summary (as a tooltip, and in words when pressed) and opens the page's own copy of
// docs/paths.md at that section. The copy is bundled (paths_doc.ts): no request leaves the page.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { PATH_REF, PATHS, PATHS_INTRO, type PathSection, pathTitle } from "../paths_doc.js";

const OPEN_EVENT = "memvirt-open-path";

/** Opens the paths document below the story at section `n`. */
export function openPath(n: number): void {
  document.dispatchEvent(new CustomEvent(OPEN_EVENT, { detail: n }));
}

function section(n: number): PathSection | undefined {
  return PATHS.find((p) => p.n === n);
}

/** One "path N" reference: its title and summary on hover or focus; pressing it says them and offers the text. */
export function PathRef({ label, n, mmu }: { label: string; n: number; mmu: string }) {
  const [open, setOpen] = useState(false);
  const p = section(n);
  if (!p) return <>{label}</>;
  const title = `Path ${p.n}: ${pathTitle(p, mmu)}. ${p.summary}`;
  return (
    <span class="path-ref-wrap">
      <button type="button" class="path-ref" title={title} aria-expanded={open} data-path={p.n} onClick={() => setOpen((o) => !o)}>
        {label}
      </button>
      {open && (
        <span class="path-tip" role="note" data-testid="path-tip">
          <strong>
            Path {p.n}: {pathTitle(p, mmu)}.
          </strong>{" "}
          {p.summary}{" "}
          <button type="button" class="linkish" onClick={() => openPath(p.n)}>
            Read path {p.n}
          </button>
        </span>
      )}
    </span>
  );
}

/** Text with each "path N" it names turned into a PathRef. */
export function PathText({ text, mmu }: { text: string; mmu: string }) {
  const out: ComponentChildren[] = [];
  let at = 0;
  for (const m of text.matchAll(PATH_REF)) {
    const i = m.index ?? 0;
    if (i > at) out.push(text.slice(at, i));
    out.push(<PathRef key={i} label={m[0]} n={Number(m[1])} mmu={mmu} />);
    at = i + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return <>{out}</>;
}

/** Inline markdown: `code`, **bold**, [text](link) as its text. */
function inline(s: string): ComponentChildren[] {
  return s
    .replace(/\[([^\]]+)\]\([^)]+\)/g, "$1")
    .split(/(`[^`]+`|\*\*[^*]+\*\*)/)
    .map((part, i) =>
      part.startsWith("`") ? (
        <code key={i}>{part.slice(1, -1)}</code>
      ) : part.startsWith("**") ? (
        <strong key={i}>{part.slice(2, -2)}</strong>
      ) : (
        part
      ),
    );
}

/** The few markdown blocks docs/paths.md uses: paragraphs, tables and lists. */
function Markdown({ text }: { text: string }) {
  const blocks = text.split(/\n\s*\n/);
  return (
    <>
      {blocks.map((b, i) => {
        const lines = b.trim().split("\n");
        if (lines[0]?.startsWith("|")) {
          const rows = lines
            .filter((l) => !/^\|[\s|-]+\|$/.test(l))
            .map((l) =>
              l
                .slice(1, -1)
                .split(" | ")
                .map((c) => c.trim()),
            );
          return (
            <table key={i} class="data-table paths-table">
              <tbody>
                {rows.map((r, k) => (
                  <tr key={k}>{r.map((c, j) => (k === 0 ? <th key={j}>{inline(c)}</th> : <td key={j}>{inline(c)}</td>))}</tr>
                ))}
              </tbody>
            </table>
          );
        }
        if (lines[0]?.startsWith("- ")) {
          const items = b
            .trim()
            .split(/\n- /)
            .map((l) => l.replace(/^- /, "").replace(/\n\s+/g, " "));
          return (
            <ul key={i}>
              {items.map((l, k) => (
                <li key={k}>{inline(l)}</li>
              ))}
            </ul>
          );
        }
        return <p key={i}>{inline(lines.join(" "))}</p>;
      })}
    </>
  );
}

/** The bundled docs/paths.md, closed until asked for; a PathRef opens it at its section. */
export function PathsPanel({ mmu }: { mmu: string }) {
  const ref = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    const on = (e: Event) => {
      const el = ref.current;
      if (!el) return;
      el.open = true;
      el.querySelector(`[data-path-section="${(e as CustomEvent<number>).detail}"]`)?.scrollIntoView({ block: "start" });
    };
    document.addEventListener(OPEN_EVENT, on);
    return () => document.removeEventListener(OPEN_EVENT, on);
  }, []);
  return (
    <details class="panel paths-doc" ref={ref} data-testid="story-paths-doc">
      <summary>
        <strong>The paths this story tells</strong> (docs/paths.md)
      </summary>
      <Markdown text={PATHS_INTRO} />
      {PATHS.map((p) => (
        <section key={p.n} data-path-section={p.n} aria-label={`Path ${p.n}`}>
          <h4>
            {p.n}. {pathTitle(p, mmu)}
          </h4>
          <Markdown text={p.body} />
        </section>
      ))}
    </details>
  );
}
