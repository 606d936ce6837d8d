// SPDX-License-Identifier: MIT
// Side by side: one guest access under EPT and under shadow paging, two columns stepping
// together (side_by_side.ts): the two-dimensional walk's references on one side, the shadow
// tables' walk on a hit and what a miss adds on the other, with the counts per side.

import { useEffect, useRef, useState } from "preact/hooks";
import type { TranslateOptions } from "../../sim/translate.js";
import type { TranslateResult } from "../protocol.js";
import { type SideBySide, type SideRef, sideBySide } from "../side_by_side.js";
import { SimClient } from "../sim_client.js";

export function SideBySideView({ opts }: { opts: TranslateOptions }) {
  const [data, setData] = useState<SideBySide | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pos, setPos] = useState(0);
  const client = useRef<SimClient | null>(null);
  const key = JSON.stringify(opts);

  useEffect(() => {
    client.current ??= new SimClient();
    const c = client.current;
    const got: { ept?: TranslateResult; shadow?: TranslateResult } = {};
    const ask = (which: "ept" | "shadow") => {
      const o: TranslateOptions = { ...opts, paging: which === "ept" ? "ept" : "native", accesses: 1, caches: false };
      const id = c.send({ type: "translate", opts: o, shadow: which === "shadow" }, (r) => {
        c.done(id);
        if (r.type === "error") return setError(r.message);
        if (r.type !== "translate") return;
        got[which] = r.result;
        if (got.ept && got.shadow) {
          setError(null);
          setData(sideBySide(got.ept.walk, got.shadow.walk, got.shadow.shadowLeaf ?? null));
          setPos(0);
        }
      });
    };
    ask("ept");
    ask("shadow");
  }, [key]);

  if (error)
    return (
      <div class="error-box" role="alert">
        {error}
      </div>
    );
  if (!data) return <p class="note">Walking the access under EPT and under shadow paging...</p>;
  const total = Math.max(data.ept.refs.length, data.hit.length);
  const eptShown = Math.min(pos, data.ept.refs.length);
  const hitShown = Math.min(pos, data.hit.length);
  return (
    <div class="side" data-testid="side-by-side">
      <fieldset class="player">
        <legend class="visually-hidden">Side-by-side player</legend>
        <button type="button" onClick={() => setPos(0)}>
          |&lt; Start
        </button>
        <button type="button" onClick={() => setPos((p) => Math.max(0, p - 1))}>
          &lt; Back
        </button>
        <button type="button" class="primary" data-testid="side-step" onClick={() => setPos((p) => Math.min(total, p + 1))}>
          Step &gt;
        </button>
        <button type="button" data-testid="side-end" onClick={() => setPos(total)}>
          End &gt;|
        </button>
        <span data-testid="side-pos">
          step {pos} of {total}
        </span>
      </fieldset>
      <div class="side-cols">
        <section class="panel" aria-label="Under EPT">
          <h3>
            Under EPT: <span data-testid="side-ept-count">{eptShown}</span> of {data.ept.refs.length} references
          </h3>
          <p class="side-sub">
            {data.ept.nested} EPT + {data.ept.guest} guest + {data.ept.data} data: the hardware's two-dimensional walk.
          </p>
          <RefList refs={data.ept.refs} shown={eptShown} testid="side-ept" />
        </section>
        <section class="panel" aria-label="Under shadow paging">
          <h3>
            Under shadow paging: <span data-testid="side-shadow-count">{hitShown}</span> of {data.hit.length} references
          </h3>
          <p class="side-sub">
            On a hit: {data.hit.length - 1} shadow + 1 data. The hardware walks KVM's shadow tables, gva to hpa in one dimension (upper
            shadow entries not modelled by this scratch machine; the leaf spte is KVM's, built from the guest's PTE).
          </p>
          <RefList refs={data.hit} shown={hitShown} testid="side-shadow" />
          <h4>On a miss (the first touch under shadow paging)</h4>
          <p class="side-sub">
            The walk stops at a missing spte and the #PF exits to KVM (<code>kvm_mmu_page_fault() -&gt; FNAME(page_fault)</code>). KVM reads
            the guest's <span data-testid="side-miss-count">{data.missReads.length}</span> entries in software (
            <code>FNAME(walk_addr_generic)</code>), installs the spte (<code>FNAME(fetch) -&gt; mmu_set_spte()</code>) and resumes the
            guest, which walks again: the {data.hit.length} references of a hit.
          </p>
          <RefList refs={data.missReads} shown={data.missReads.length} testid="side-miss" still />
        </section>
      </div>
      <p class="note" data-testid="side-summary">
        {data.summary}
      </p>
    </div>
  );
}

function RefList({ refs, shown, testid, still = false }: { refs: SideRef[]; shown: number; testid: string; still?: boolean }) {
  return (
    <ol class="side-refs" data-testid={testid}>
      {refs.map((r, i) => (
        <li
          key={i}
          class={i < shown ? `filled ${r.kind}${i === shown - 1 && !still ? " current" : ""}` : "hidden-ref"}
          data-filled={i < shown ? "1" : "0"}
        >
          <span class="stepno">{r.n}</span> {i < shown ? r.label : "not yet"}
          {i < shown && r.value && <span class="mono side-val"> {r.value}</span>}
        </li>
      ))}
    </ol>
  );
}
