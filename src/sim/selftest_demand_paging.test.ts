// SPDX-License-Identifier: MIT
// demand_paging_test on memvirt: the faults each vCPU takes writing its slice of fresh memory,
// and the real test's option checks.
import { describe, expect, test } from "vitest";
import { parseDemandPaging, runDemandPaging } from "./selftest_demand_paging.js";
import { SelftestAssert, getopt, parseSize } from "./selftest_options.js";

function run(argv: string[], mmu: "ept" | "shadow" = "ept") {
  const p = parseDemandPaging(argv);
  if (p === "help") throw new Error("help");
  return runDemandPaging(p, { mmu, ghz: 3, thp: "madvise" });
}

describe("demand_paging -v 2 -b 4M (1,024 pages a vCPU)", () => {
  test("EPT: each vCPU takes one EPT violation and one host fault per page, plus the VMM's tables it walks first, plus the GUEST_SYNC exit", () => {
    const [v0, v1] = run(["-v", "2", "-b", "4M"]).passes[0]!;
    expect(v0!.writes).toBe(1024);
    expect(v1!.writes).toBe(1024);
    // handle_mm_fault() once per 4 KiB page of the slice (anonymous backing, THP only on madvise).
    expect(v0!.counts.host_fault).toBe(1024);
    expect(v1!.counts.host_fault).toBe(1024);
    // vCPU 0 walks first: the PML4, PDPT and PD (shared) and its 2 PTs fault into the EPT; vCPU 1 only its 2 PTs.
    expect(v0!.counts.kvm_page_fault).toBe(1024 + 5);
    expect(v1!.counts.kvm_page_fault).toBe(1024 + 2);
    expect(v0!.counts.vm_exit).toBe(1024 + 5 + 1);
    expect(v1!.counts.vm_exit).toBe(1024 + 2 + 1);
  });

  test("the lines the real test prints, the rate being pages per vCPU over the slowest vCPU's time", () => {
    const r = run(["-v", "2", "-b", "4M"]);
    expect(r.lines.slice(0, 6)).toEqual([
      "Random seed: 0x6b8b4567",
      "Testing guest mode: PA-bits:ANY, VA-bits:48,  4K pages",
      "guest physical test memory: [0x600000, 0xe00000)",
      "Finished creating vCPUs and starting uffd threads",
      "Started all vCPUs",
      "All vCPU threads joined",
    ]);
    const t = r.seconds[0]!;
    expect(t).toBe(Math.max(...r.passes[0]!.map((p) => p.cycles)) / 3e9);
    expect(r.lines[6]).toMatch(/^Total guest execution time:\t0\.\d{9}s$/);
    expect(r.lines[7]).toBe(`Per-vcpu demand paging rate:\t${(1024 / t).toFixed(6)} pgs/sec/vcpu`);
    expect(r.lines[8]).toBe(`Overall demand paging rate:\t${((2 * 1024) / t).toFixed(6)} pgs/sec`);
  });

  test("-o: both vCPUs loop over all 2,048 pages; each page is faulted in once, by whichever vCPU comes first", () => {
    const [v0, v1] = run(["-v", "2", "-b", "4M", "-o"]).passes[0]!;
    expect(v0!.writes + v1!.writes).toBe(2 * 2048);
    expect(v0!.counts.host_fault! + v1!.counts.host_fault!).toBe(2048);
  });

  test("-s anonymous_hugetlb_2mb: one EPT violation per 2 MiB page (a 2 MiB spte), no 4 KiB host faults", () => {
    const [v0] = run(["-v", "1", "-b", "4M", "-s", "anonymous_hugetlb_2mb"]).passes[0]!;
    expect(v0!.writes).toBe(1024);
    // The test region's two huge pages, and the one under the VMM's tables at 0x180000 (PML4, PDPT, PD, PTs).
    expect(v0!.counts.kvm_page_fault).toBe(3);
  });
});

describe("the real test's options", () => {
  const refused: [string[], string][] = [
    [["-v", "0"], "Number of vCPUs must be greater than 0, got '0'"],
    [["-v", "65"], "Invalid number of vcpus, must be between 1 and 64"],
    [["-u", "SOMETIMES"], "UFFD mode must be 'MISSING' or 'MINOR'."],
    [["-u", "MINOR"], "userfaultfd MINOR mode requires shared memory; pick a different -s"],
    [["-r", "0"], "Invalid number of readers per uffd 0: must be >=1"],
    [["-b", "4x"], "Unknown size letter x"],
    [["-b", "M"], "Need at least one digit in 'M'"],
    [["-b", "6000"], "Guest memory size is not host page size aligned."],
    [["-m", "3"], "Guest mode ID 3 (PA-bits:48,  VA-bits:48,  4K pages) not supported."],
    [["-m", "40"], "Guest mode ID 40 too big"],
    [["-z"], "invalid option -- 'z'"],
    [["-b"], "option requires an argument -- 'b'"],
  ];
  for (const [argv, message] of refused)
    test(`${argv.join(" ")}: ${message}`, () => {
      expect(() => parseDemandPaging(argv)).toThrow(new SelftestAssert(message));
    });

  test("what memvirt does not model is refused saying so: -u on hugetlb, -u with -w (exit on missing), -s shmem, -c (pinning)", () => {
    for (const argv of [
      ["-u", "MISSING", "-s", "anonymous_hugetlb"],
      ["-u", "MISSING", "-w"],
      ["-s", "shmem"],
      ["-s", "anonymous_hugetlb_64kb"],
      ["-c", "1,2"],
    ]) {
      let e: unknown;
      try {
        parseDemandPaging(argv);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(SelftestAssert);
      expect((e as SelftestAssert).memvirt).toBe(true);
    }
  });

  test("parse_size: suffixes k m g t b in either case, hex and octal bases; getopt: -v2, -ob 4M", () => {
    expect(parseSize("4M")).toBe(4 * 2 ** 20);
    expect(parseSize("3g")).toBe(3 * 2 ** 30);
    expect(parseSize("0x1000")).toBe(4096);
    expect(parseSize("010k")).toBe(8 * 1024);
    expect(parseSize("4096b")).toBe(4096);
    expect(getopt(["-v2", "-ob", "4M"], "ob:v:")).toEqual([
      { opt: "v", arg: "2" },
      { opt: "o", arg: "" },
      { opt: "b", arg: "4M" },
    ]);
  });
});

describe("demand_paging -u MISSING: the vCPUs' faults resolved by a userfaultfd reader with UFFDIO_COPY", () => {
  const uffd = run(["-v", "2", "-b", "4M", "-u", "MISSING"]);
  const plain = run(["-v", "2", "-b", "4M"]);

  test("one uffd fault and one UFFDIO_COPY per page, each on the vCPU that touched it; KVM's and the host's faults as without -u", () => {
    expect(uffd.uffd).toEqual([{ faults: 2048, copies: 2048 }]);
    const [v0, v1] = uffd.passes[0]!;
    expect(v0!.counts.userfault).toBe(1024);
    expect(v1!.counts.userfault).toBe(1024);
    // handle_userfault() returns VM_FAULT_RETRY and the retried fault finds the page: one host fault a page.
    expect(v0!.counts.host_fault).toBe(1024);
    expect(v0!.counts.kvm_page_fault).toBe(plain.passes[0]![0]!.counts.kvm_page_fault);
    // The same lines (the handlers print only under PER_VCPU_DEBUG); the time adds the round trips at the cost model's userfault.
    expect(uffd.lines.slice(0, 6)).toEqual(plain.lines.slice(0, 6));
    expect(uffd.seconds[0]! - plain.seconds[0]!).toBeCloseTo((1024 * 3100) / 3e9, 12);
  });

  test("-o: one uffd for the whole region; each page faults once, on whichever vCPU comes first", () => {
    const o = run(["-v", "2", "-b", "4M", "-u", "MISSING", "-o"]);
    expect(o.uffd).toEqual([{ faults: 2048, copies: 2048 }]);
    expect(o.passes[0]!.map((x) => x.counts.userfault)).toEqual([2048, 0]);
  });

  test("-d 10: each fault waits out the reader's 10 us usleep()", () => {
    const d = run(["-v", "2", "-b", "4M", "-u", "MISSING", "-d", "10"]);
    expect(d.seconds[0]! - uffd.seconds[0]!).toBeCloseTo(1024 * 10e-6, 12);
  });
});
