// SPDX-License-Identifier: MIT
// Keyboard shortcuts that work anywhere in a view, not only once one of its buttons has focus:
// the active view listens on the document. Keys typed into a field, and keys another control
// already handled (the tab list's arrows), are left alone.

import { useEffect, useRef } from "preact/hooks";

/** The shortcuts of each view, for the help overlay (`?`). */
export const SHORTCUTS: { view: string; keys: [string, string][] }[] = [
  {
    view: "Everywhere",
    keys: [
      ["?", "this help"],
      ["Esc", "close the help"],
      ["1 / 2 / 3", "the Translate, Run and Story views"],
      ["D", "dark / light / system theme"],
      ["H / G", "the start page / the glossary"],
    ],
  },
  {
    view: "Translate",
    keys: [
      ["Right or .", "next memory reference"],
      ["Left or ,", "previous reference"],
      ["Home / End", "empty grid / whole walk"],
      ["P", "play / pause"],
    ],
  },
  {
    view: "Story",
    keys: [
      ["Right or .", "next event"],
      ["Left or ,", "previous event"],
      ["] / [", "next / previous chapter"],
      ["N / B", "next / previous section of a chapter"],
      ["Home / End", "start / latest event"],
      ["P", "play / pause"],
    ],
  },
];

/** True when a key event belongs to a text field or was already handled. */
export function typing(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  const tag = t?.tagName ?? "";
  return e.defaultPrevented || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t?.isContentEditable === true;
}

/** Calls `handler` for keydowns anywhere on the page while `active`; it returns true when it used the key. */
export function useViewKeys(active: boolean, handler: (e: KeyboardEvent) => boolean): void {
  const h = useRef(handler);
  h.current = handler;
  useEffect(() => {
    if (!active) return;
    const on = (e: KeyboardEvent) => {
      if (typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
      if (h.current(e)) e.preventDefault();
    };
    document.addEventListener("keydown", on);
    return () => document.removeEventListener("keydown", on);
  }, [active]);
}
