// SPDX-License-Identifier: MIT
// dirty_log_perf_test on memvirt: the pages each iteration dirties, faults on and harvests, the
// huge pages split and recovered, the ioctls' prices, and the real test's option checks.
import { describe, expect, test } from "vitest";
import { DEFAULT_DIRTY_LOG_MODEL, type DirtyLogPerfModel, parseDirtyLogPerf, runDirtyLogPerf } from "./selftest_dirty_log_perf.js";
import { SelftestAssert } from "./selftest_options.js";

function run(argv: string[], model: Partial<DirtyLogPerfModel> = {}) {
  const p = parseDirtyLogPerf(argv);
  if (p === "help") throw new Error("help");
  return runDirtyLogPerf(p, { ...DEFAULT_DIRTY_LOG_MODEL, ...model });
}

/** -v 2 -b 4M: the test region is 2,048 pages; guest RAM (one memslot) 3,584 pages, 56 bitmap words. */
const PAGES = 2048;
const SLOT_WORDS = 56;

describe("dirty_log_perf -v 2 -b 4M -i 3, EPT, anonymous memory", () => {
  const r = run(["-v", "2", "-b", "4M", "-i", "3"]);
  const its = r.runs[0]!.iterations;

  test("the real test's lines, in its order", () => {
    const shape = r.lines.map((l) => l.replace(/\d+\.\d{9}s/g, "T"));
    expect(shape).toEqual([
      "Random seed: 0x6b8b4567",
      "Test iterations: 3",
      "Testing guest mode: PA-bits:ANY, VA-bits:48,  4K pages",
      "guest physical test memory: [0x600000, 0xe00000)",
      "Populate memory time: T",
      "Enabling dirty logging time: T",
      "",
      ...[1, 2, 3].flatMap((i) => [
        `Iteration ${i} dirty memory time: T`,
        `Iteration ${i} get dirty log time: T`,
        `Iteration ${i} clear dirty log time: T`,
      ]),
      "Disabling dirty logging time: T",
      "Get dirty log over 3 iterations took T. (Avg T/iteration)",
      "Clear dirty log over 3 iterations took T. (Avg T/iteration)",
    ]);
  });

  test("initially-all-set: iteration 1 harvests every page without a fault; from then on each written page is one fast fault and one harvested bit", () => {
    expect(its[0]).toMatchObject({ written: PAGES, harvested: PAGES, cleared: PAGES, faults: 0 });
    for (const it of its.slice(1))
      expect(it).toMatchObject({ written: PAGES, harvested: PAGES, cleared: PAGES, faults: PAGES, fastFaults: PAGES });
    // Each KVM_CLEAR_DIRTY_LOG re-protects the pages it cleared (kvm_arch_mmu_enable_log_dirty_pt_masked()).
    expect(r.runs[0]!.work.sptesWrprot).toBe(3 * PAGES);
  });

  test("the ioctls' time is their work under the cost model (3 GHz)", () => {
    const t = (cycles: number) => `${(Math.round(cycles / 3) / 1e9).toFixed(9)}s`;
    // KVM_SET_USER_MEMORY_REGION with initially-set: the memslot update only.
    expect(r.lines[5]).toBe(`Enabling dirty logging time: ${t(300 + 600000)}`);
    // KVM_GET_DIRTY_LOG with manual protect: the ioctl and the slot's bitmap words.
    expect(r.lines[8]).toBe(`Iteration 1 get dirty log time: ${t(300 + SLOT_WORDS * 7)}`);
    // KVM_CLEAR_DIRTY_LOG of 2,048 pages: 32 words, 2,048 sptes write-protected, one remote flush.
    expect(r.lines[9]).toBe(`Iteration 1 clear dirty log time: ${t(300 + 32 * 7 + PAGES * 390 + 1000)}`);
  });
});

describe("dirty_log_perf -g (no KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)", () => {
  test("no clear lines; the same harvested counts as with manual protect; every iteration faults on each written page", () => {
    const r = run(["-v", "2", "-b", "4M", "-i", "3", "-g"]);
    expect(r.lines.filter((l) => l.includes("clear dirty log")).length).toBe(0);
    expect(r.lines.at(-1)).toMatch(/^Get dirty log over 3 iterations took /);
    const manual = run(["-v", "2", "-b", "4M", "-i", "3"]).runs[0]!.iterations.map((it) => it.harvested);
    expect(r.runs[0]!.iterations.map((it) => it.harvested)).toEqual(manual);
    // Plus 7: the guest's PML4, PDPT, PD and 4 PTs of the region share the logged slot here (the real test keeps
    // them in slot 0); with EPT A/D the walker's accesses to them are writes (SDM 29.3.5), so each is dirtied again.
    for (const it of r.runs[0]!.iterations)
      expect(it).toMatchObject({ written: PAGES, harvested: PAGES, faults: PAGES + 7, fastFaults: PAGES + 7 });
  });

  test("shadow paging: one fault per written page, none of them fast (the shadow MMU takes mmu_lock for 4 KiB writes)", () => {
    const r = run(["-v", "2", "-b", "4M", "-i", "2", "-g"], { mmu: "shadow" });
    for (const it of r.runs[0]!.iterations) expect(it).toMatchObject({ written: PAGES, harvested: PAGES, faults: PAGES, fastFaults: 0 });
  });
});

describe("dirty_log_perf -s anonymous_hugetlb: huge pages split and recovered", () => {
  // Populating maps the region's 4 huge pages and the one holding the guest's page tables.
  test("eager_page_split=Y, initially-all-set: the first KVM_CLEAR_DIRTY_LOG splits the 4 huge pages it clears; no fault splits; logging off recovers them", () => {
    const r = run(["-v", "2", "-b", "4M", "-i", "3", "-s", "anonymous_hugetlb"]).runs[0]!;
    expect(r.hugeLeaves).toEqual({ populated: 5, enabled: 5, disabled: 5 });
    expect(r.iterations.map((it) => it.hugeLeaves)).toEqual([1, 1, 1]);
    expect(r.work.hugeSplits).toBe(4);
    expect(r.work.hugeRecovered).toBe(4);
    for (const it of r.iterations.slice(1)) expect(it).toMatchObject({ faults: PAGES, fastFaults: PAGES });
  });

  test("eager_page_split=N: the clear write-protects the huge leaves; the first write to each splits it on the fault path", () => {
    const r = run(["-v", "2", "-b", "4M", "-i", "3", "-s", "anonymous_hugetlb"], { eagerPageSplit: false }).runs[0]!;
    expect(r.work.hugeSplits).toBe(0);
    expect(r.iterations.map((it) => it.hugeLeaves)).toEqual([5, 1, 1]);
    expect(r.iterations[1]).toMatchObject({ faults: PAGES, fastFaults: PAGES - 4 });
    expect(r.iterations[2]).toMatchObject({ faults: PAGES, fastFaults: PAGES });
  });

  test("anonymous_hugetlb_1gb: a clear splits the 1 GiB leaf and only the 2 MiB children its range touches (tdp_mmu_split_huge_pages_root())", () => {
    const r = run(["-v", "1", "-b", "4M", "-s", "anonymous_hugetlb_1gb"]).runs[0]!;
    expect(r.hugeLeaves.populated).toBe(1);
    // 1 GiB -> 512 x 2 MiB, then the region's two 2 MiB pages -> 4 KiB: 510 huge leaves left.
    expect(r.work.hugeSplits).toBe(3);
    expect(r.iterations.map((it) => it.hugeLeaves)).toEqual([510, 510]);
    // Logging off: the 1 GiB table is promoted back in place.
    expect(r.work.hugeRecovered).toBe(1);
    expect(r.hugeLeaves.disabled).toBe(1);
  });

  test("-g: enabling splits all 5 huge leaves eagerly, or the first writes split them", () => {
    const eager = run(["-v", "2", "-b", "4M", "-g", "-s", "anonymous_hugetlb"]).runs[0]!;
    expect(eager.hugeLeaves.enabled).toBe(0);
    expect(eager.work.hugeSplits).toBe(5);
    expect(eager.iterations[0]).toMatchObject({ faults: PAGES + 7, fastFaults: PAGES + 7 });
    const lazy = run(["-v", "2", "-b", "4M", "-g", "-s", "anonymous_hugetlb"], { eagerPageSplit: false }).runs[0]!;
    expect(lazy.hugeLeaves.enabled).toBe(5);
    expect(lazy.iterations[0]).toMatchObject({ hugeLeaves: 0, faults: PAGES + 7, fastFaults: PAGES + 7 - 5 });
    expect(lazy.hugeLeaves.disabled).toBe(5);
  });
});

describe("dirty_log_perf options", () => {
  const refused = (argv: string[]) => {
    try {
      parseDirtyLogPerf(argv);
    } catch (e) {
      if (e instanceof SelftestAssert) return { message: e.message, memvirt: e.memvirt };
      throw e;
    }
    throw new Error(`accepted ${argv.join(" ")}`);
  };

  test("the real test's own checks", () => {
    expect(refused(["-i", "1"])).toEqual({ message: "The test should have at least two iterations", memvirt: false });
    expect(refused(["-w", "101"])).toEqual({ message: "Write percentage must be between 0 and 100", memvirt: false });
    expect(refused(["-w", "-1"]).message).toBe("Write percentage must be non-negative, got '-1'");
    expect(refused(["-v", "0"]).message).toBe("Number of vCPUs must be greater than 0, got '0'");
    expect(refused(["-r", "0"]).message).toBe("Random seed must be greater than 0, got '0'");
    expect(refused(["-z"]).message).toBe("invalid option -- 'z'");
  });

  test("what memvirt does not model is refused as memvirt's", () => {
    for (const o of [["-e"], ["-n"], ["-p", "0x10000000"], ["-x", "2"], ["-c", "1,2"]]) expect(refused(o).memvirt).toBe(true);
    expect(refused(["-e"]).message).toContain("--eager-page-split");
    expect(parseDirtyLogPerf(["-x", "1", "-a", "-o", "-w", "50", "-r", "7"])).toMatchObject({
      random: true,
      partition: false,
      writePercent: 50,
      seed: 7,
    });
    expect(parseDirtyLogPerf(["-h"])).toBe("help");
  });

  test("-w 50 -a: harvested pages are the distinct pages written, each one fast fault", () => {
    const its = run(["-v", "2", "-b", "4M", "-w", "50", "-a"]).runs[0]!.iterations;
    const it = its[1]!;
    expect(it.harvested).toBeLessThan(it.written);
    expect(it.faults).toBe(it.harvested);
    expect(it.cleared).toBe(it.harvested);
  });
});
