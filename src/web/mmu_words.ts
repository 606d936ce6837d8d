// SPDX-License-Identifier: MIT
// The words for KVM's second-level tables by MMU live in sim/ (the narration uses them).
export * from "../sim/mmu_words.js";

/* explain: the translate view's intro and host-page label, by paging mode (ept, npt, shadow, native). */

/** The translate view's opening sentences for `mode`: "EPT" only under EPT, "NPT" only under NPT. */
export function translateIntro(mode: string): string {
  if (mode === "ept" || mode === "npt") {
    const t = mode.toUpperCase();
    return `Under ${t} every guest-physical address the walk meets (each guest table, then the data) is translated through KVM's ${t} tables too: n*m + n + m table reads before the data. The grid fills one memory reference at a time.`;
  }
  if (mode === "shadow") {
    return "Under shadow paging the hardware walks KVM's shadow tables, which map the guest-virtual address straight to the host-physical one: one dimension, one reference per level, then the data. The grid fills one memory reference at a time.";
  }
  return "Without virtualization the hardware walks one set of page tables: one reference per level, then the data. The grid fills one memory reference at a time.";
}

/** The label of the host page-size control: it applies to EPT and NPT only. */
export function hostPageLabel(mode: string): string {
  return mode === "ept" || mode === "npt" ? `Host (${mode.toUpperCase()}) page` : "Host page (nested paging only)";
}
