// SPDX-License-Identifier: MIT
// access_tracking_perf_test on memvirt: page_idle's walks through the rmap and KVM's aging.
import { describe, expect, test } from "vitest";
import { parseAccessTracking, runAccessTracking } from "./selftest_access_tracking.js";

describe("access_tracking_perf -v 1 -b 128M (32,768 pages), EPT with A/D bits", () => {
  test("populate faults every page and the VMM's tables once; idle memory takes no fault (the A bits are set again by the CPU); page_idle walks each folio 3 times, finding it young twice", () => {
    const p = parseAccessTracking(["-v", "1", "-b", "128M"]);
    if (p === "help") throw new Error("help");
    const r = runAccessTracking(p, { mmu: "ept", ghz: 3, thp: "madvise" });
    expect(r.stretches.map((s) => s.name)).toEqual([
      "Populating memory",
      "Writing to populated memory",
      "Reading from populated memory",
      "Mark memory idle",
      "Writing to idle memory",
      "Mark memory idle",
      "Reading from idle memory",
    ]);
    // 32,768 pages + PML4, PDPT, PD and 64 PTs of the VMM's tables.
    expect(r.stretches[0]!.faults).toEqual([32768 + 3 + 64]);
    for (const i of [1, 2, 4, 6]) expect(r.stretches[i]!.faults).toEqual([0]);
    // First mark: clear refs (young: populated). Second: the read re-checks (young: written), the write clears (not young).
    expect(r.idle).toEqual({ walked: 3 * 32768, referenced: 2 * 32768 });
    expect(r.lines[4]).toMatch(/^Populating memory {13}: 0\.\d{9}s$/);
  });

  test("-s anonymous_thp is refused by memvirt (4 KiB folios only); -o with -v 0 says why", () => {
    expect(() => parseAccessTracking(["-s", "anonymous_thp"])).toThrow(/4 KiB folios only/);
    expect(() => parseAccessTracking(["-v", "0"])).toThrow(/1 to 64 vCPUs/);
  });
});
