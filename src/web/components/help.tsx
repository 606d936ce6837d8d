// SPDX-License-Identifier: MIT
// The keyboard help overlay (`?` anywhere): every view's shortcuts; Esc, `?` or the button closes it.

import { useEffect, useRef } from "preact/hooks";
import { SHORTCUTS } from "../keys.js";

export function HelpOverlay({ onClose }: { onClose: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    close.current?.focus();
    return () => prev?.focus();
  }, []);
  return (
    <div class="overlay" data-testid="help-overlay" role="dialog" aria-modal="true" aria-labelledby="help-title">
      <div class="overlay-box">
        <h2 id="help-title">Keyboard shortcuts</h2>
        <p class="lead">They work anywhere in a view, except while you type in a field.</p>
        <p class="lead" data-testid="help-glossary">
          Words like gpa, spte or rmap: see the <a href="#glossary">glossary</a> (every underlined term links to its entry).
        </p>
        <div class="help-grid">
          {SHORTCUTS.map((g) => (
            <section key={g.view}>
              <h3>{g.view}</h3>
              <dl>
                {g.keys.map(([k, what]) => (
                  <div key={k} class="help-row">
                    <dt>
                      <kbd>{k}</kbd>
                    </dt>
                    <dd>{what}</dd>
                  </div>
                ))}
              </dl>
            </section>
          ))}
        </div>
        <button type="button" ref={close} onClick={onClose}>
          Close (Esc)
        </button>
      </div>
    </div>
  );
}
