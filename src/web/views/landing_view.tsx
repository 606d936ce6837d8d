// SPDX-License-Identifier: MIT
// The start page, shown when the link names no view: what memvirt shows (the four addresses
// of a guest access and who translates each to the next), the three views, and three places
// to start, each a link into a view with its starting state in the URL.

import type { ViewProps } from "../app.js";
import { Term } from "../components/term.js";
import type { TermId } from "../glossary.js";
import { COMPARE_EXAMPLE, startLinks } from "../start_links.js";

const ADDRESSES: { id: TermId; name: string; who: string }[] = [
  { id: "gva", name: "guest-virtual", who: "a program in the guest uses it" },
  { id: "gpa", name: "guest-physical", who: "the guest's page tables give it" },
  { id: "hva", name: "host-virtual", who: "KVM's memslot gives it: QEMU's mapping of guest RAM" },
  { id: "hpa", name: "host-physical", who: "the host's page tables for QEMU give it: real RAM" },
];

export function LandingView(_: ViewProps) {
  const links = startLinks();
  return (
    <div class="landing" data-testid="landing">
      <h2>What memvirt shows</h2>
      <p class="lead">
        A faithful model of how QEMU and KVM give a guest memory on x86-64, run live in your browser: the same code as the{" "}
        <code>memvirt</code> command line, so every number on screen is the model's. A guest access goes through four addresses:
      </p>
      <ol class="layers" aria-label="The four addresses of a guest access">
        {ADDRESSES.map((a, i) => (
          <li key={a.id} class="layer" data-step={i + 1}>
            <span class="layer-name">
              <Term id={a.id} />
            </span>
            <span class="layer-long">{a.name}</span>
            <span class="layer-who">{a.who}</span>
          </li>
        ))}
      </ol>
      <div class="shortcuts">
        <div class="shortcut tdp" data-testid="shortcut-tdp">
          <Term id="ept" /> / <Term id="npt" />: gpa &rarr; hpa, KVM's tables, walked by the CPU after the guest's own
        </div>
        <div class="shortcut shadow" data-testid="shortcut-shadow">
          <Term id="shadow-paging" />: gva &rarr; hpa in one table KVM builds from the guest's
        </div>
      </div>
      <p class="landing-text">
        The hardware does not walk all of that on each access. With <Term id="ept" /> (Intel) or <Term id="npt" /> (AMD), KVM keeps a second
        set of tables mapping gpa straight to hpa, built from the memslot and the host's tables, and the CPU walks the guest's tables and
        KVM's together: the <Term id="walk">two-dimensional walk</Term>. With <Term id="shadow-paging" />, KVM folds all of it into one
        table from gva to hpa and must keep it in step with the guest. When the host runs short of memory it reclaims pages of QEMU's like
        any other process's, and the <Term id="mmu-notifier" /> makes KVM drop its entries first.
      </p>
      <h3>Three views</h3>
      <ul class="landing-views">
        <li>
          <a href="#translate">Translate</a>: one guest access, every memory reference of its walk on a grid, step by step.
        </li>
        <li>
          <a href="#run">Run</a>: a scenario (guest, host, workload) run to the end: counters, charts, costs; two variants compared.
        </li>
        <li>
          <a href="#story">Story</a>: a run narrated event by event, with the kernel function behind each step and live panels.
        </li>
      </ul>
      <h3>Where to start</h3>
      <div class="cards">
        <a class="card" href={links.walk} data-testid="card-walk">
          <strong>See one access walked: 25 references</strong>
          <span>
            A cold 4-level guest walk under 4-level EPT: 24 table reads and the data, placed on the grid one at a time. Press Play.
          </span>
        </a>
        <a class="card" href={links.story} data-testid="card-story">
          <strong>Watch a page be faulted in, evicted and faulted back</strong>
          <span>
            The built-in story: a 512 MiB guest on a 256 MiB host. First touches, the host running short, reclaim through the notifier into
            swap, and the re-fault.
          </span>
        </a>
        <a class="card" href={links.compare} data-testid="card-compare">
          <strong>Run and compare a scenario</strong>
          <span>
            <code>{COMPARE_EXAMPLE}</code> under EPT and under shadow paging side by side: exits by reason, faults, costs. Press Run.
          </span>
        </a>
      </div>
      <p class="landing-text">
        Words like <Term id="spte" />, <Term id="rmap" /> or <Term id="memslot" /> link to the <a href="#glossary">glossary</a>, which says
        what each is and where it lives in Linux, KVM or QEMU. Keys: <kbd>?</kbd> lists them, <kbd>1</kbd> <kbd>2</kbd> <kbd>3</kbd> pick a
        view, <kbd>G</kbd> the glossary, <kbd>H</kbd> this page.
      </p>
    </div>
  );
}
