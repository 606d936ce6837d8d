// SPDX-License-Identifier: MIT
// A glossary term on screen: a link to its entry (`#glossary/<id>`), with the short
// definition as its tooltip. The text shown defaults to the entry's own term.

import type { ComponentChildren } from "preact";
import { GLOSSARY, type TermId } from "../glossary.js";

export function Term({ id, children }: { id: TermId; children?: ComponentChildren }) {
  const g = GLOSSARY[id];
  return (
    <a class="term" href={`#glossary/${id}`} title={`${g.term}${g.aka ? ` (${g.aka})` : ""}: ${g.text}`} data-term={id}>
      {children ?? g.term}
    </a>
  );
}

/** A label with one term in it: `before` + the term's link (showing `text`) + `after`. */
export function withTerm(id: TermId, text: string, before = "", after = "") {
  return (
    <>
      {before}
      <Term id={id}>{text}</Term>
      {after}
    </>
  );
}
