// SPDX-License-Identifier: MIT
// A selftest-style guest (guest.kernel: none) and the guest.pcid option, end to end: the VMM
// builds the page tables before the run (virt_map), the guest code stores to its tables,
// INVLPGs, loads CR3 and exits, with the counts KVM gives under shadow paging and EPT/NPT.
// Each figure is the difference between two runs of the same scenario, one with the steps
// under test appended (runs are deterministic).
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { Engine } from "./engine.js";
import { ScenarioError, loadScenario } from "./scenario_load.js";

const MiB = 2 ** 20;

function yaml(mmu: string, steps: string[], pcid = true): string {
  return `
seed: 1
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    mmu: ${mmu}
    guest:
      kernel: none
      pcid: ${pcid}
      spaces:
        - name: s0
          regions:
            - {name: warm, gva: 0x40000000, size: 4KiB}
            - {name: r0, gva: 0x80000000, size: 16MiB}
            - {name: h0, gva: 0xc0000000, size: 16MiB, page: 2m, cpl: 0}
        - name: s1
          share: s0
          regions:
            - {name: r1, gva: 0x8000000000, size: 4MiB}
    processes:
      - name: g0
        steps:
${steps.map((s) => `          - ${s}`).join("\n")}
`;
}

type Counts = Record<string, number>;

function run(text: string): Counts {
  const e = new Engine(loadScenario(text, "selftest.yaml"));
  e.machine.checker.checkShadowWalks = true;
  const r = e.run();
  const vm = r.vms[0]!;
  expect(r.check.dataErrors + r.check.invariantViolations).toBe(0);
  return { ...vm.stats, ...vm.vcpus[0]!.exitReasons, rss: vm.qemu.rssBytes, rssZeroPage: vm.qemu.rssZeroPageBytes, ...vm.guest };
}

/** What `more` steps add after `before`. */
function added(mmu: string, before: string[], more: string[], pcid = true): (k: string) => number {
  const a = run(yaml(mmu, before, pcid));
  const b = run(yaml(mmu, [...before, ...more], pcid));
  return (k) => (b[k] ?? 0) - (a[k] ?? 0);
}

const WARM = ["touch: {name: warm, op: write}"];
const WRITE_R0 = "touch: {name: r0, op: write}";
const READ_R0 = "touch: {name: r0, op: read}";

describe("the VMM builds the tables; the guest's first touches fault the host in", () => {
  test("shadow: writing 4096 fresh 4 KiB pages: 4096 exits and pf_fixed, no guest #PF, 1 PD + 8 PT shadow pages, RSS +16 MiB", () => {
    const d = added("shadow", WARM, [WRITE_R0]);
    expect(d("pf_fixed")).toBe(4096);
    expect(d("pf_taken")).toBe(4096);
    expect(d("exits")).toBe(4096);
    expect(d("EXCEPTION_NMI")).toBe(4096);
    expect(d("pf_guest")).toBe(0);
    // The warm-up made the root and the PDPT; the region needs its PD and one PT per 2 MiB.
    expect(d("mmu_cache_miss")).toBe(1 + 8);
    expect(d("pages_4k")).toBe(4096);
    expect(d("rss")).toBe(16 * MiB);
  });

  test("shadow: whole run: the root, PDPT, PD and PT of the warm-up page plus the region's 9; the tables were written by the VMM, not the guest", () => {
    const c = run(yaml("shadow", [...WARM, WRITE_R0]));
    expect(c.mmu_cache_miss).toBe(4 + 9);
    expect(c.pf_guest).toBe(0);
    expect(c.mmu_root_loads).toBe(1);
    // KVM_SET_SREGS set CR3: no CR_ACCESS exit.
    expect(c.CR_ACCESS ?? 0).toBe(0);
    // Tables for warm (PML4, PDPT, PD, PT), r0 (PD, 8 PT), h0 (PD), s1 (PML4, PDPT, PD, 2 PT... one PT for 4 MiB is 2).
    expect(c.virt_map_tables).toBe(4 + 9 + 1 + 1 + 1 + 1 + 2);
    expect(c.pte_writes + c.pde_writes).toBe(0);
  });

  test("shadow: reading 4096 fresh pages maps the host zero page (RSS +0); writing them then retries once per page through the COW invalidation", () => {
    const rd = added("shadow", WARM, [READ_R0]);
    expect(rd("pf_fixed")).toBe(4096);
    expect(rd("exits")).toBe(4096);
    expect(rd("rss")).toBe(0);
    expect(rd("rssZeroPage")).toBe(16 * MiB);
    const wr = added("shadow", [...WARM, READ_R0], [WRITE_R0]);
    expect(wr("pf_fixed")).toBe(4096);
    expect(wr("pf_taken")).toBe(2 * 4096);
    expect(wr("exits")).toBe(2 * 4096);
    expect(wr("mmu_fault_retries")).toBe(4096);
    // wp_page_copy() -> mmu_notifier invalidate -> kvm_flush_remote_tlbs(): one request per page.
    expect(wr("remote_tlb_flush_requests")).toBe(4096);
    expect(wr("mmu_cache_miss")).toBe(0);
    expect(wr("rss")).toBe(16 * MiB);
    expect(wr("rssZeroPage")).toBe(-16 * MiB);
  });

  test("shadow: 2 MiB guest pages at CPL 0 on 4 KiB host pages: KVM maps each with a direct page of 4 KiB sptes", () => {
    const d = added("shadow", WARM, ["touch: {name: h0, op: write}"]);
    expect(d("pf_fixed")).toBe(4096);
    expect(d("exits")).toBe(4096);
    expect(d("pf_guest")).toBe(0);
    // The PD (indirect) and one direct shadow page per guest 2 MiB page.
    expect(d("mmu_cache_miss")).toBe(1 + 8);
    expect(d("pages_4k")).toBe(4096);
    expect(d("pages_2m")).toBe(0);
    expect(d("rss")).toBe(16 * MiB);
  });

  for (const [mmu, reason] of [
    ["ept", "EPT_VIOLATION"],
    ["npt", "NPF"],
  ] as const) {
    test(`${mmu}: writing 4096 fresh pages: 4096 exits for the data plus 9 for the PD and PT frames the walk reads first; no guest #PF`, () => {
      const d = added(mmu, WARM, [WRITE_R0]);
      expect(d(reason)).toBe(4096 + 9);
      expect(d("exits")).toBe(4096 + 9);
      expect(d("pf_fixed")).toBe(4096 + 9);
      expect(d("pages_4k")).toBe(4096 + 9);
      expect(d("pf_guest")).toBe(0);
      expect(d("rss")).toBe(16 * MiB);
    });

    test(`${mmu}: read then write: the zero page first, then one retried ${reason} per page`, () => {
      const rd = added(mmu, WARM, [READ_R0]);
      expect(rd(reason)).toBe(4096 + 9);
      expect(rd("rss")).toBe(0);
      expect(rd("rssZeroPage")).toBe(16 * MiB);
      const wr = added(mmu, [...WARM, READ_R0], [WRITE_R0]);
      expect(wr(reason)).toBe(2 * 4096);
      expect(wr("pf_fixed")).toBe(4096);
      expect(wr("mmu_fault_retries")).toBe(4096);
      expect(wr("remote_tlb_flush_requests")).toBe(4096);
      expect(wr("rss")).toBe(16 * MiB);
    });

    test(`${mmu}: 2 MiB guest pages at CPL 0: 4096 exits plus 1 for the PD frame`, () => {
      const d = added(mmu, WARM, ["touch: {name: h0, op: write}"]);
      expect(d(reason)).toBe(4096 + 1);
      expect(d("pf_guest")).toBe(0);
    });
  }
});

describe("guest stores to its page tables, INVLPG, MOV CR3 and no-op exits", () => {
  const TOUCHED = [...WARM, WRITE_R0];

  test("shadow: a PTE store to a shadowed leaf table faults once and unsyncs it; later stores to it are free", () => {
    const first = added("shadow", TOUCHED, ["setPte: {region: r0, page: 0}"]);
    expect(first("exits")).toBe(1);
    expect(first("pf_taken")).toBe(1);
    expect(first("pf_fixed")).toBe(1);
    expect(first("mmu_unsync")).toBe(1);
    expect(first("pf_emulate")).toBe(0);
    const later = added(
      "shadow",
      [...TOUCHED, "setPte: {region: r0, page: 0}"],
      ["setPte: {region: r0, page: 1, accessed: true}", "setPte: {region: r0, page: 2}"],
    );
    expect(later("exits")).toBe(0);
    expect(later("mmu_unsync")).toBe(0);
    expect(later("pte_writes")).toBe(2);
  });

  test("shadow: INVLPG of an unsync page resyncs that spte; the exit counts invlpg", () => {
    const d = added("shadow", [...TOUCHED, "setPte: {region: r0, page: 0, writable: false}"], ["invlpg: {region: r0, page: 0}"]);
    expect(d("exits")).toBe(1);
    expect(d("INVLPG")).toBe(1);
    expect(d("invlpg")).toBe(1);
  });

  test("shadow: a PDE store is emulated (pf_emulate, mmu_pte_write, mmu_pde_zapped); the third in a row floods the PD and zaps it", () => {
    const pde = "setPde: {region: r0, page: 0}";
    const one = added("shadow", TOUCHED, [pde]);
    expect(one("exits")).toBe(1);
    expect(one("pf_emulate")).toBe(1);
    expect(one("mmu_pte_write")).toBe(1);
    expect(one("mmu_pde_zapped")).toBe(1);
    expect(one("mmu_flooded")).toBe(0);
    const two = added("shadow", [...TOUCHED, pde], [pde]);
    expect(two("mmu_pde_zapped")).toBe(1);
    expect(two("mmu_flooded")).toBe(0);
    // detect_write_flooding(): write_flooding_count reaches 3.
    const three = added("shadow", [...TOUCHED, pde, pde], [pde]);
    expect(three("pf_emulate")).toBe(1);
    expect(three("mmu_pte_write")).toBe(1);
    expect(three("mmu_pde_zapped")).toBe(0);
    expect(three("mmu_flooded")).toBe(1);
    expect(three("mmu_shadow_zapped")).toBe(1);
    // The next touch of the first 2 MiB rebuilds the PD; its PTs were only unlinked and are found again.
    const after = added("shadow", [...TOUCHED, pde, pde, pde], ["touch: {name: r0, op: read, size: 2MiB}"]);
    expect(after("mmu_cache_miss")).toBe(1);
  });

  test("shadow without PCID: MOV CR3 among cached roots flushes once each (KVM_REQ_MMU_SYNC + KVM_REQ_TLB_FLUSH_CURRENT) and builds nothing", () => {
    const before = [...WARM, "loadCr3: {space: s1}", "touch: {name: r1, op: write}", "loadCr3: {space: s0}"];
    const loads = ["loadCr3: {space: s1}", "loadCr3: {space: s0}", "loadCr3: {space: s0}"];
    const d = added("shadow", before, loads, false);
    expect(d("CR_ACCESS")).toBe(3);
    expect(d("exits")).toBe(3);
    expect(d("tlb_flush")).toBe(3);
    // Two switches hit prev_roots (fast_pgd_switch); the third is the same CR3.
    expect(d("fast_pgd_switch")).toBe(2);
    expect(d("mmu_root_loads")).toBe(0);
    expect(d("mmu_cache_miss")).toBe(0);
  });

  test("shadow with PCID: the same loads with bit 63 set flush nothing; without it they flush the active PCID", () => {
    const before = [...WARM, "loadCr3: {space: s1}", "touch: {name: r1, op: write}", "loadCr3: {space: s0}"];
    const noFlush = added("shadow", before, [
      "loadCr3: {space: s1, noFlush: true}",
      "loadCr3: {space: s0, noFlush: true}",
      "loadCr3: {space: s0, noFlush: true}",
    ]);
    expect(noFlush("CR_ACCESS")).toBe(3);
    expect(noFlush("tlb_flush")).toBe(0);
    expect(noFlush("mmu_root_loads")).toBe(0);
    const flush = added("shadow", before, ["loadCr3: {space: s1}", "loadCr3: {space: s0}", "loadCr3: {space: s0}"]);
    expect(flush("tlb_flush")).toBe(3);
  });

  test("shadow: the spaces share s0's lower tables: s1's root is a new shadow page that links to s0's PDPT shadow page", () => {
    const d = added("shadow", WARM, ["loadCr3: {space: s1}", "touch: {name: warm, op: read}"]);
    // Only s1's root is new; one #PF links it to s0's PDPT shadow page, under which the leaf is already there.
    expect(d("mmu_cache_miss")).toBe(1);
    expect(d("mmu_root_loads")).toBe(1);
    expect(d("CR_ACCESS")).toBe(1);
    expect(d("EXCEPTION_NMI")).toBe(1);
    expect(d("pages_4k")).toBe(0);
  });

  for (const mmu of ["ept", "npt"] as const) {
    test(`${mmu}: the guest owns CR3, INVLPG and its tables: stores, INVLPG and CR3 loads take no exit`, () => {
      const d = added(mmu, TOUCHED, [
        "setPte: {region: r0, page: 0}",
        "setPde: {region: r0, page: 0}",
        "invlpg: {region: r0, page: 0}",
        "loadCr3: {space: s1}",
        "loadCr3: {space: s0}",
      ]);
      expect(d("exits")).toBe(0);
      expect(d("pte_writes")).toBe(1);
      expect(d("pde_writes")).toBe(1);
      expect(d("cr3_loads")).toBe(2);
    });
  }

  for (const mmu of ["shadow", "ept"] as const) {
    test(`${mmu}: exit is one I/O exit each and nothing else`, () => {
      const d = added(mmu, WARM, ["exit: {count: 5}"]);
      expect(d("exits")).toBe(5);
      expect(d("IO_INSTRUCTION")).toBe(5);
      expect(d("pf_taken") + d("tlb_flush") + d("mmu_cache_miss")).toBe(0);
    });
  }

  test("a store that clears a PTE, then INVLPG: the next access is a guest #PF, which a guest without a kernel cannot handle", () => {
    const text = yaml("shadow", [...TOUCHED, "setPte: {region: r0, page: 3, present: false}", "invlpg: {region: r0, page: 3}", READ_R0]);
    expect(() => new Engine(loadScenario(text, "selftest.yaml")).run()).toThrow(
      /guest #PF .* at gva 0x80003000 in a guest without a kernel/,
    );
  });
});

describe("guest.pcid and guest.zeroPage in a guest with a kernel", () => {
  const switching = (mmu: string, pcid: boolean, zeroPage = true) => `
seed: 1
host: {ram: 1GiB, swap: 0, thp: never}
vms:
  - name: vm0
    ram: 256MiB
    mmu: ${mmu}
    guest: {pcid: ${pcid}, zeroPage: ${zeroPage}}
    processes:
      - name: p0
        steps: [mmap: {name: a, size: 64KiB}, touch: {name: a, op: write}, switch: {to: p1}, touch: {name: a, op: read}, switch: {to: p1}, touch: {name: a, op: read}]
      - name: p1
        steps: [mmap: {name: b, size: 64KiB}, touch: {name: b, op: write}, switch: {to: p0}, touch: {name: b, op: read}, switch: {to: p0}, touch: {name: b, op: read}]
`;
  const go = (text: string) => {
    const e = new Engine(loadScenario(text, "pcid.yaml"));
    const r = e.run();
    expect(r.check.dataErrors).toBe(0);
    return r.vms[0]!;
  };

  test("shadow: 7 CR3 loads either way; without PCID the 4 switches back to a live ASID flush too (tlb_flush +4)", () => {
    const on = go(switching("shadow", true));
    const off = go(switching("shadow", false));
    expect(on.vcpus[0]!.exitReasons.CR_ACCESS).toBe(7);
    expect(off.vcpus[0]!.exitReasons.CR_ACCESS).toBe(7);
    expect(off.stats.tlb_flush - on.stats.tlb_flush).toBe(4);
  });

  test("ept: with PCIDs every read after a switch hits the TLB (64); without, each CR3 load flushed them all (0)", () => {
    expect(go(switching("ept", true)).hw.tlbHits).toBe(64);
    expect(go(switching("ept", false)).hw.tlbHits).toBe(0);
  });

  test("zeroPage: false: a read fault gets a page of its own, not the zero page", () => {
    const text = switching("ept", true).replace("touch: {name: a, op: write}", "touch: {name: a, op: read}");
    expect(go(text).guest.zero_page_maps).toBe(16);
    expect(go(text.replace("zeroPage: true", "zeroPage: false")).guest.zero_page_maps).toBe(0);
  });
});

describe("scenario errors name the place and the fix", () => {
  const problems = (text: string) => {
    try {
      loadScenario(text, "bad.yaml");
    } catch (e) {
      if (e instanceof ScenarioError) return e.issues.map((i) => `${i.path}: ${i.message}`);
      throw e;
    }
    return [];
  };

  test("a kernel's steps in a guest without one, and a guest without one's steps in a guest with one", () => {
    expect(problems(yaml("shadow", ["mmap: {name: x, size: 1MiB}"]))).toEqual([
      expect.stringMatching(/^vms\[0\]\.processes\[0\]\.steps\[0\]\.mmap: mmap needs a guest kernel; with guest\.kernel none/),
    ]);
    const linux = yaml("shadow", ["setPte: {region: r0, page: 0}"])
      .replace(/ {6}kernel: none\n/, "")
      .replace(/ {6}spaces:[\s\S]*?(?= {4}processes)/, "");
    expect(problems(linux)).toEqual([
      expect.stringMatching(/^vms\[0\]\.processes\[0\]\.steps\[0\]\.setPte: setPte is a step of a guest without a kernel/),
    ]);
  });

  test("a workload step over a region of a space not loaded, an unknown region, noFlush without PCID, setPte on a 2 MiB region", () => {
    const p = problems(
      yaml(
        "shadow",
        [
          "touch: {name: r1, op: write}",
          "touch: {name: r9, op: write}",
          "loadCr3: {space: s0, noFlush: true}",
          "setPte: {region: h0, page: 0}",
        ],
        false,
      ),
    );
    expect(p).toEqual([
      expect.stringMatching(/steps\[0\]\.touch\.name: region "r1" is not mapped in space "s0".*loadCr3/),
      expect.stringMatching(/steps\[1\]\.touch\.name: no region named "r9"; did you mean "r0"\?/),
      expect.stringMatching(/steps\[2\]\.loadCr3\.noFlush: CR3 bit 63 is reserved without CR4\.PCIDE/),
      expect.stringMatching(/steps\[3\]\.setPte\.region: "h0" is mapped with 2 MiB pages, whose leaf is the PDE; use setPde/),
    ]);
  });

  test("a region in a top-level slot shared with another space, and a misaligned 2 MiB region", () => {
    const text = yaml("shadow", ["exit: {}"])
      .replace("{name: r1, gva: 0x8000000000, size: 4MiB}", "{name: r1, gva: 0x100000000, size: 4MiB}")
      .replace("{name: h0, gva: 0xc0000000, size: 16MiB", "{name: h0, gva: 0xc0001000, size: 16MiB");
    expect(problems(text)).toEqual([
      expect.stringMatching(/spaces\[0\]\.regions\[2\]\.gva: 0xc0001000 is not a multiple of the 2m page size/),
      expect.stringMatching(/spaces\[1\]\.regions\[0\]\.gva: the region falls in a 512GiB slot whose tables this space shares with "s0"/),
    ]);
  });
});

test("examples/selftest-demand-paging.yaml runs with the counts its comments give", () => {
  const text = readFileSync(new URL("../../examples/selftest-demand-paging.yaml", import.meta.url), "utf8");
  const r = new Engine(loadScenario(text, "examples/selftest-demand-paging.yaml")).run();
  const vm = r.vms[0]!;
  expect(vm.stats.pf_fixed).toBe(2 * 4096);
  expect(vm.stats.pf_taken).toBe(3 * 4096);
  expect(vm.vcpus[0]!.exitReasons.IO_INSTRUCTION).toBe(2);
  expect(vm.qemu.rssBytes - vm.guest.virt_map_tables! * 4096).toBe(16 * MiB);
  expect(r.check.dataErrors + r.check.invariantViolations).toBe(0);
});
