// SPDX-License-Identifier: MIT
// The keys `--compare` (and the web page's compare) accept: a scenario path (`vms[0].ram`,
// `host.swap`, `cost.vm_exit`) or a per-VM key (`mmu`, `backing`, ...) that applies to every VM.

export const PER_VM_KEYS = new Set(["mmu", "backing", "prealloc", "vcpus", "ram", "guest.levels", "tlb", "balloon.freePageReporting"]);

/** The overrides one variant applies to the scenario text. */
export function compareOverrides(key: string, value: unknown, vmCount: number): Record<string, unknown> {
  if (PER_VM_KEYS.has(key)) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < vmCount; i++) o[`vms[${i}].${key}`] = value;
    return o;
  }
  return { [key]: value };
}
