// SPDX-License-Identifier: MIT
// The app shell: three views behind keyboard-usable tabs, and the URL hash that holds
// each view's state (so a link reproduces what you see). Views mount on first visit and
// stay mounted, so a run or a story keeps going while you look elsewhere.

import { useEffect, useRef, useState } from "preact/hooks";
import { HelpOverlay } from "./components/help.js";
import { typing } from "./keys.js";
import { nextTheme, useTheme } from "./theme.js";
import { formatHash, type HashState, PAGES, type Page, parseHash, VIEWS } from "./url_state.js";
import { GlossaryView } from "./views/glossary_view.js";
import { LandingView } from "./views/landing_view.js";
import { RunView } from "./views/run_view.js";
import { StoryView } from "./views/story_view.js";
import { TranslateView } from "./views/translate_view.js";

const TITLES: Record<Page, string> = { home: "Start", translate: "Translate", run: "Run", story: "Story", glossary: "Glossary" };

/** What a view gets: its parameters from the URL at load, and a way to write them back. */
export interface ViewProps {
  initial: Record<string, string>;
  setParams: (params: Record<string, string>) => void;
  active: boolean;
}

export function App() {
  const first = useRef<HashState>(parseHash(location.hash));
  const [view, setView] = useState<Page>(first.current.view);
  const [visited, setVisited] = useState<Set<Page>>(() => new Set([first.current.view]));
  const params = useRef<Record<Page, Record<string, string>>>({
    home: {},
    glossary: {},
    translate: {},
    run: {},
    story: {},
    [first.current.view]: first.current.params,
  });
  const tabs = useRef<Record<string, HTMLButtonElement | null>>({});
  // The view shown now, for callbacks made later (a view's debounced URL update must not write over another view's).
  const current = useRef<Page>(view);
  current.current = view;
  // Bumped when the user navigates to another link: that link's view remounts with its parameters.
  const [generation, setGeneration] = useState<Record<Page, number>>({ home: 0, translate: 0, run: 0, story: 0, glossary: 0 });

  // The hash the app wrote or handled last. A URL that differs was changed since by a link or Back,
  // whose hashchange (a queued task) has not reached onNav yet: nothing may write over it.
  const known = useRef(location.hash);
  // A new view is a new history entry (Back returns to the previous view); a view's own changes replace its entry.
  const writeHash = (v: Page, push = false) => {
    const hash = formatHash({ view: v, params: params.current[v] });
    if (location.hash !== known.current || hash === location.hash) return;
    if (push) history.pushState(null, "", hash);
    else history.replaceState(null, "", hash);
    known.current = location.hash;
  };

  const select = (v: Page, focus = false, push = true) => {
    setView(v);
    setVisited((s) => (s.has(v) ? s : new Set([...s, v])));
    writeHash(v, push && v !== current.current);
    current.current = v;
    if (focus) tabs.current[v]?.focus();
  };

  const [help, setHelp] = useState(false);
  // Read by the key handler: the help shows as soon as it renders, but the handler that sees it open would be subscribed only after the paint, and an Escape in between was lost.
  const helpOpen = useRef(false);
  helpOpen.current = help;
  const [theme, setTheme] = useTheme();

  useEffect(() => {
    // Back/Forward and links: the view in the URL; its parameters remount it only if they changed.
    const onNav = () => {
      known.current = location.hash;
      const s = parseHash(location.hash);
      const same = formatHash({ view: s.view, params: params.current[s.view] }) === formatHash(s);
      params.current[s.view] = s.params;
      if (!same) setGeneration((g) => ({ ...g, [s.view]: g[s.view] + 1 }));
      select(s.view, false, false);
      setHelp(false); // a link in the help overlay (the glossary) closes it
    };
    addEventListener("hashchange", onNav);
    addEventListener("popstate", onNav);
    return () => {
      removeEventListener("hashchange", onNav);
      removeEventListener("popstate", onNav);
    };
  }, []);

  useEffect(() => {
    const on = (e: KeyboardEvent) => {
      if (e.key === "Escape" && helpOpen.current) {
        setHelp(false);
        return;
      }
      if (typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === "?") setHelp((x) => !x);
      else if (e.key === "1" || e.key === "2" || e.key === "3") select(VIEWS[Number(e.key) - 1]!);
      else if (e.key === "d" || e.key === "D") setTheme(nextTheme(theme));
      else if (e.key === "g" || e.key === "G") select("glossary");
      else if (e.key === "h" || e.key === "H") select("home");
      else return;
      e.preventDefault();
    };
    document.addEventListener("keydown", on);
    return () => document.removeEventListener("keydown", on);
  }, [theme]);

  const onTabKey = (e: KeyboardEvent) => {
    const i = PAGES.indexOf(view);
    let next: Page | null = null;
    if (e.key === "ArrowRight") next = PAGES[(i + 1) % PAGES.length]!;
    else if (e.key === "ArrowLeft") next = PAGES[(i + PAGES.length - 1) % PAGES.length]!;
    else if (e.key === "Home") next = PAGES[0]!;
    else if (e.key === "End") next = PAGES[PAGES.length - 1]!;
    if (next) {
      e.preventDefault();
      select(next, true);
    }
  };

  const propsFor = (v: Page): ViewProps => ({
    initial: params.current[v],
    setParams: (p) => {
      params.current[v] = p;
      if (v === current.current) writeHash(v);
    },
    active: view === v,
  });

  return (
    <>
      <a class="skip" href="#main">
        Skip to the view
      </a>
      <header class="top">
        <h1>memvirt</h1>
        <span class="tagline">QEMU/KVM memory virtualization, computed live by the real model in your browser</span>
        <div class="top-tools">
          <button type="button" data-testid="theme-toggle" onClick={() => setTheme(nextTheme(theme))} title="Theme (D)">
            Theme: {theme}
          </button>
          <button type="button" data-testid="help-button" onClick={() => setHelp(true)} title="Keyboard shortcuts (?)">
            Keys ?
          </button>
        </div>
        <div role="tablist" aria-label="Views" onKeyDown={onTabKey}>
          {PAGES.map((v) => (
            <button
              key={v}
              type="button"
              role="tab"
              id={`tab-${v}`}
              aria-selected={view === v}
              aria-controls={`panel-${v}`}
              tabIndex={view === v ? 0 : -1}
              ref={(el) => {
                tabs.current[v] = el;
              }}
              onClick={() => select(v)}
            >
              {TITLES[v]}
            </button>
          ))}
        </div>
      </header>
      {help && <HelpOverlay onClose={() => setHelp(false)} />}
      <main id="main">
        {PAGES.map((v) => (
          <section key={v} role="tabpanel" id={`panel-${v}`} aria-labelledby={`tab-${v}`} hidden={view !== v}>
            {visited.has(v) && v === "home" && <LandingView key={generation[v]} {...propsFor(v)} />}
            {visited.has(v) && v === "glossary" && <GlossaryView key={generation[v]} {...propsFor(v)} />}
            {visited.has(v) && v === "translate" && <TranslateView key={generation[v]} {...propsFor(v)} />}
            {visited.has(v) && v === "run" && <RunView key={generation[v]} {...propsFor(v)} />}
            {visited.has(v) && v === "story" && <StoryView key={generation[v]} {...propsFor(v)} />}
          </section>
        ))}
      </main>
    </>
  );
}
