// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { DEFAULT_SCENARIO_YAML, formatPath, loadScenario, parsePath, ScenarioError } from "./scenario_load.js";
import { GiB, KiB, MiB } from "./size.js";

/** The example of SCENARIO.md, verbatim. */
const SCENARIO_MD_EXAMPLE = `seed: 42                      # every random choice derives from it
host:
  ram: 2GiB                   # sizes: integers with B, KiB, MiB, GiB, TiB (or plain bytes)
  swap: 4GiB                  # 0: no swap device
  thp: never                  # never | madvise | always (anonymous THP policy)
  watermarks: {min: 16MiB, low: 20MiB, high: 24MiB}   # optional; default derived like Linux
cost: {}                      # optional overrides of the cost table, by event name
vms:
  - name: vm0
    ram: 1GiB
    vcpus: 1
    mmu: ept                  # ept | npt | shadow
    backing: 4k               # 4k | thp | hugetlb-2m | hugetlb-1g
    prealloc: false           # true: QEMU touches all guest RAM at start
    guest:
      levels: 4               # 4 | 5
    processes:
      - name: p0
        vcpu: 0               # which vCPU runs it (time-shared with others on that vCPU)
        steps:                # run in order; each step is one workload or one action
          - touch: {size: 64MiB, op: write}                      # each page once, in order
          - random: {size: 512MiB, accesses: 1000000, writeRatio: 0.3}
          - trace: {file: traces/sort.lackey.gz}
          - mmap: {name: heap, size: 256MiB}                     # guest-side mapping
          - munmap: {name: heap}
          - switch: {to: p1}                                     # CR3 load
timeline:                     # host-side or cross-VM actions at points in simulated time
  - at: {cycles: 5000000}     # or {accesses: N} counted over the whole run
    madvise: {vm: vm0, gpa: 0x0, size: 64MiB, advice: DONTNEED}   # on QEMU's mapping of guest RAM
`;

/** The example with the process its `switch` step names. */
const EXAMPLE_WITH_P1 = `${SCENARIO_MD_EXAMPLE.replace("timeline:", "      - {name: p1}\ntimeline:")}`;

/** Issues of a scenario that must fail, formatted. */
function problems(text: string, fileName = "demo.yaml", options = {}): string[] {
  try {
    loadScenario(text, fileName, options);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).format().split("\n");
  }
  throw new Error("the scenario validated");
}

const MINIMAL = `host:
  ram: 2GiB
vms:
  - name: vm0
    ram: 1GiB
`;

describe("SCENARIO.md's example", () => {
  test("every key of the example parses; the only complaint is the switch to p1, which the example never declares", () => {
    expect(problems(SCENARIO_MD_EXAMPLE, "example.yaml")).toEqual([
      'example.yaml:26:26: vms[0].processes[0].steps[5].switch.to: no process named "p1" in "vm0"; did you mean "p0"?',
    ]);
  });

  test("with p1 declared, the example loads into typed values with sizes in bytes", () => {
    const s = loadScenario(EXAMPLE_WITH_P1, "scenarios/example.yaml");
    expect(s.seed).toBe(42);
    expect(s.host).toEqual({ ram: 2 * GiB, swap: 4 * GiB, thp: "never", watermarks: { min: 16 * MiB, low: 20 * MiB, high: 24 * MiB } });
    expect(s.cost).toEqual({});
    const vm = s.vms[0]!;
    expect({ ...vm, processes: undefined }).toEqual({
      name: "vm0",
      ram: GiB,
      vcpus: 1,
      mmu: "ept",
      backing: "4k",
      prealloc: false,
      mergeable: false,
      tlb: "golden-cove",
      guest: { levels: 4, pcid: true, zeroPage: true, swap: 0, kernel: "linux" },
      processes: undefined,
    });
    expect(vm.processes.map((p) => [p.name, p.vcpu])).toEqual([
      ["p0", 0],
      ["p1", 0],
    ]);
    expect(vm.processes[0]!.steps).toEqual([
      { kind: "touch", size: 64 * MiB, op: "write" },
      { kind: "random", size: 512 * MiB, accesses: 1_000_000, writeRatio: 0.3 },
      { kind: "trace", file: "traces/sort.lackey.gz", path: "scenarios/traces/sort.lackey.gz" },
      { kind: "mmap", name: "heap", size: 256 * MiB, hugePage: false },
      { kind: "munmap", name: "heap" },
      { kind: "switch", to: "p1" },
    ]);
    expect(s.timeline).toEqual([
      { at: { clock: "cycles", value: 5_000_000 }, action: { kind: "madvise", vm: "vm0", gpa: 0, size: 64 * MiB, advice: "DONTNEED" } },
    ]);
  });
});

describe("core keys and their defaults", () => {
  test("a minimal scenario is fully defaulted", () => {
    const s = loadScenario(MINIMAL, "min.yaml");
    expect(s).toEqual({
      seed: 1,
      host: { ram: 2 * GiB, swap: 0, thp: "never", watermarks: { min: 1448 * 4 * KiB, low: 1972 * 4 * KiB, high: 2496 * 4 * KiB } },
      cost: {},
      vms: [
        {
          name: "vm0",
          ram: GiB,
          vcpus: 1,
          mmu: "ept",
          backing: "4k",
          prealloc: false,
          mergeable: false,
          tlb: "golden-cove",
          guest: { levels: 4, pcid: true, zeroPage: true, swap: 0, kernel: "linux" },
          processes: [],
        },
      ],
      timeline: [],
    });
  });

  test("every value of every enumerated key parses", () => {
    for (const thp of ["never", "madvise", "always"]) {
      for (const [mmu, backing, levels] of [
        ["ept", "4k", 4],
        ["npt", "thp", 5],
        ["shadow", "hugetlb-2m", 4],
        ["ept", "hugetlb-1g", 5],
      ] as const) {
        if (backing === "thp" && thp === "never") continue;
        const s = loadScenario(
          `host: {ram: 4GiB, swap: 1GiB, thp: ${thp}}\nvms: [{name: a, ram: 1GiB, vcpus: 4, mmu: ${mmu}, backing: ${backing}, prealloc: true, guest: {levels: ${levels}}}]\n`,
          "enum.yaml",
        );
        expect(s.host.thp).toBe(thp);
        expect(s.vms[0]).toMatchObject({ mmu, backing, prealloc: true, vcpus: 4, guest: { levels } });
      }
    }
    for (const advice of ["DONTNEED", "FREE", "PAGEOUT", "COLD"]) {
      const s = loadScenario(
        `${MINIMAL}timeline:\n  - {at: {accesses: 1_000}, madvise: {vm: vm0, gpa: 2MiB, size: 4KiB, advice: ${advice}}}\n`,
        "t.yaml",
      );
      expect(s.timeline[0]).toEqual({
        at: { clock: "accesses", value: 1000 },
        action: { kind: "madvise", vm: "vm0", gpa: 2 * MiB, size: 4 * KiB, advice },
      });
    }
  });

  test("every step kind parses, with region sizes and one-pass counts filled in", () => {
    const s = loadScenario(
      `${MINIMAL}    processes:
      - name: p0
        steps:
          - mmap: {name: heap, size: 8MiB, hugePage: true}
          - touch: {name: heap, op: read}
          - touch: {name: heap, size: 4KiB, op: write}
          - random: {name: heap, accesses: "1_000", writeRatio: 0}
          - sequential: {name: heap}
          - sequential: {size: 1MiB, stride: 64B, accesses: 10, writeRatio: 1}
          - trace: {file: /abs/t.lackey}
          - switch: {to: p1}
          - munmap: {name: heap}
      - name: p1
`,
      "dir/steps.yaml",
    );
    expect(s.vms[0]!.processes[0]!.steps).toEqual([
      { kind: "mmap", name: "heap", size: 8 * MiB, hugePage: true },
      { kind: "touch", name: "heap", size: 8 * MiB, op: "read" },
      { kind: "touch", name: "heap", size: 4 * KiB, op: "write" },
      { kind: "random", name: "heap", size: 8 * MiB, accesses: 1000, writeRatio: 0 },
      { kind: "sequential", name: "heap", size: 8 * MiB, accesses: 2048, writeRatio: 0, stride: 4 * KiB },
      { kind: "sequential", size: MiB, accesses: 10, writeRatio: 1, stride: 64 },
      { kind: "trace", file: "/abs/t.lackey", path: "/abs/t.lackey" },
      { kind: "switch", to: "p1" },
      { kind: "munmap", name: "heap" },
    ]);
  });

  test("JSON input works, tabs and all, and reports positions in the JSON", () => {
    const json = JSON.stringify(
      { seed: "1_000", host: { ram: "1GiB", swap: 0 }, vms: [{ name: "vm0", ram: 268435456, mmu: "npt" }] },
      null,
      "\t",
    );
    const s = loadScenario(json, "s.json");
    expect(s.seed).toBe(1000);
    expect(s.vms[0]!.ram).toBe(256 * MiB);
    expect(s.vms[0]!.mmu).toBe("npt");
    const bad = json.replace('"npt"', '"ntp"');
    expect(problems(bad, "s.json")).toEqual([
      's.json:11:11: vms[0].mmu: "ntp" is not a valid mmu; did you mean "npt"? (one of ept, npt, shadow)',
    ]);
  });

  test("JSON syntax errors name the line and column", () => {
    expect(problems('{\n  "host": {"ram": "1GiB"},\n}\n', "s.json")).toEqual([
      "s.json:3:1: Expected double-quoted property name; the file must be valid JSON",
    ]);
  });

  test("cost overrides are numbers by event name, checked against the cost table when it is given", () => {
    const text = `${MINIMAL}cost: {vmexit: 1200, ept_walk_read: 40.5}\n`;
    expect(loadScenario(text, "c.yaml").cost).toEqual({ vmexit: 1200, ept_walk_read: 40.5 });
    expect(problems(text, "c.yaml", { costEvents: ["vm_exit", "ept_walk_read"] })).toEqual([
      'c.yaml:6:8: cost.vmexit: no cost event named "vmexit"; did you mean "vm_exit"?',
    ]);
    expect(problems(`${MINIMAL}cost: {vm_exit: -1}\n`)).toEqual([
      "demo.yaml:6:17: cost.vm_exit: -1 is negative; a cost is 0 or more cycles",
    ]);
  });

  test("overrides set keys before validation, as --compare variants do", () => {
    const s = loadScenario(MINIMAL, "o.yaml", { overrides: { "vms[0].mmu": "shadow", "host.swap": "1GiB" } });
    expect(s.vms[0]!.mmu).toBe("shadow");
    expect(s.host.swap).toBe(GiB);
    expect(problems(MINIMAL, "o.yaml", { overrides: { "vms[0].mmu": "spt" } })).toEqual([
      'o.yaml:4:5: vms[0].mmu: "spt" is not a valid mmu; did you mean "ept"? (one of ept, npt, shadow)',
    ]);
  });

  test("paths format and parse both ways", () => {
    expect(formatPath(["vms", 0, "processes", 2, "steps", 1, "touch", "size"])).toBe("vms[0].processes[2].steps[1].touch.size");
    expect(formatPath(["cost", "vm exit"])).toBe('cost["vm exit"]');
    expect(parsePath("vms[0].processes[2].name")).toEqual(["vms", 0, "processes", 2, "name"]);
    expect(parsePath('cost["vm exit"]')).toEqual(["cost", "vm exit"]);
    expect(() => parsePath("vms[x]")).toThrow(/not a key path/);
  });
});

describe("bad scenarios name the field, the line and column, and the fix (issue 4)", () => {
  test("unknown key, with did you mean", () => {
    expect(problems(MINIMAL.replace("    ram: 1GiB", "    ram: 1GiB\n    mmuu: ept"))).toEqual([
      'demo.yaml:6:5: vms[0].mmuu: unknown key "mmuu"; did you mean "mmu"?',
    ]);
    expect(problems(MINIMAL.replace("  ram: 2GiB", "  ram: 2GiB\n  memory: 1GiB"))).toEqual([
      'demo.yaml:3:3: host.memory: unknown key "memory"; did you mean "ram"?',
    ]);
    expect(problems(MINIMAL.replace("  ram: 2GiB", "  ram: 2GiB\n  zzz: 1"))).toEqual([
      'demo.yaml:3:3: host.zzz: unknown key "zzz"; valid keys here: ram, swap, thp, watermarks, ksm, zswap',
    ]);
    expect(problems(`${MINIMAL}    processes: [{name: p, steps: [{tuch: {size: 4KiB, op: read}}]}]\n`)).toEqual([
      'demo.yaml:6:36: vms[0].processes[0].steps[0].tuch: unknown key "tuch"; did you mean "touch"?',
    ]);
  });

  test("negative or unparseable size", () => {
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: -1GiB"))).toEqual([
      'demo.yaml:5:10: vms[0].ram: "-1GiB" is negative; a size like 512MiB: a whole number with B, KiB, MiB, GiB or TiB, or plain bytes',
    ]);
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: lots"))).toEqual([
      'demo.yaml:5:10: vms[0].ram: "lots" is not a size; a size like 512MiB: a whole number with B, KiB, MiB, GiB or TiB, or plain bytes',
    ]);
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: 512MB"))).toEqual([
      'demo.yaml:5:10: vms[0].ram: unknown unit "MB" in "512MB"; did you mean 512MiB? (sizes use binary units B, KiB, MiB, GiB, TiB)',
    ]);
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: 5000"))).toEqual([
      "demo.yaml:5:10: vms[0].ram: 5000B is not a multiple of 4KiB; use a multiple, e.g. 8KiB",
    ]);
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: 0"))).toEqual(["demo.yaml:5:10: vms[0].ram: 0B is too small; at least 4KiB"]);
  });

  test("more vCPUs than supported", () => {
    expect(problems(`${MINIMAL}    vcpus: 65\n`)).toEqual([
      "demo.yaml:6:12: vms[0].vcpus: 65 vCPUs is more than memvirt supports; 1 to 64 vCPUs per VM",
    ]);
    expect(problems(`${MINIMAL}    vcpus: 0\n`)).toEqual(["demo.yaml:6:12: vms[0].vcpus: 0 vCPUs; a VM has 1 to 64 vCPUs"]);
    expect(problems(`${MINIMAL}    vcpus: two\n`)).toEqual([
      'demo.yaml:6:12: vms[0].vcpus: "two" is not a vCPU count; a whole number from 1 to 64',
    ]);
  });

  test("guest RAM larger than the guest-physical address space", () => {
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: 65TiB"))).toEqual([
      "demo.yaml:5:10: vms[0].ram: 65TiB is too large; at most 1023GiB (the most guest RAM memvirt models: 1 TiB of guest-physical memory, PCI hole included; use a smaller guest)",
    ]);
  });

  test("unknown mmu mode", () => {
    expect(problems(`${MINIMAL}    mmu: vmx\n`)).toEqual(['demo.yaml:6:10: vms[0].mmu: "vmx" is not a valid mmu; one of ept, npt, shadow']);
    expect(problems(`${MINIMAL}    mmu: EPT\n`)).toEqual([
      'demo.yaml:6:10: vms[0].mmu: "EPT" is not a valid mmu; did you mean "ept"? (one of ept, npt, shadow)',
    ]);
  });

  test("several problems come back together, in file order", () => {
    expect(problems(`host:\n  ram: 2GiB\n  swapp: 1GiB\nvms:\n  - name: vm0\n    ram: 512XB\n    vcpus: 65\n    prealloc: yes\n`)).toEqual([
      'demo.yaml:3:3: host.swapp: unknown key "swapp"; did you mean "swap"?',
      'demo.yaml:6:10: vms[0].ram: unknown unit "XB" in "512XB"; a size like 512MiB: a whole number with B, KiB, MiB, GiB or TiB, or plain bytes',
      "demo.yaml:7:12: vms[0].vcpus: 65 vCPUs is more than memvirt supports; 1 to 64 vCPUs per VM",
      'demo.yaml:8:15: vms[0].prealloc: "yes" is not a boolean; true or false',
    ]);
  });

  test("missing keys point at the mapping that lacks them", () => {
    expect(problems("host:\n  ram: 2GiB\nvms:\n  - name: vm0\n")).toEqual([
      "demo.yaml:4:5: vms[0].ram: missing; add ram: a size like 512MiB (Guest RAM (QEMU's -m))",
    ]);
    expect(problems("vms: [{name: a, ram: 1GiB}]\n")).toEqual(["demo.yaml:1:1: host: missing; add host: a mapping (The host machine)"]);
  });

  test("YAML syntax errors and empty files are ScenarioErrors with a position", () => {
    expect(problems("host:\n  ram: [1\nvms: 3\n")).toEqual([
      "demo.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]; the file must be valid YAML",
    ]);
    expect(problems("host:\n  ram: 1\n  ram: 2\n")).toEqual(["demo.yaml:3:3: Map keys must be unique; the file must be valid YAML"]);
    expect(problems("")).toEqual(["demo.yaml:1:1: the file holds no scenario; a mapping with host and vms (see docs/scenario.md)"]);
    expect(problems("- 1\n")).toEqual(["demo.yaml:1:1: the file holds a list; a mapping with host and vms (see docs/scenario.md)"]);
    expect(problems("host: *nope\n")).toEqual(["demo.yaml:1:7: alias *nope has no anchor; define &nope before using *nope"]);
  });

  test("the error message is the formatted list, and the issues are data", () => {
    try {
      loadScenario(`${MINIMAL}    mmu: vmx\n`, "demo.yaml");
    } catch (e) {
      const err = e as ScenarioError;
      expect(err.name).toBe("ScenarioError");
      expect(err.message).toBe(err.format());
      expect(err.issues).toEqual([
        { path: "vms[0].mmu", line: 6, column: 10, message: '"vmx" is not a valid mmu; one of ept, npt, shadow' },
      ]);
    }
    expect.assertions(3);
  });
});

describe("cross-field checks", () => {
  const withProcesses = (body: string) => `${MINIMAL}    vcpus: 2\n    processes:\n${body}`;

  test("a process runs on a vCPU the VM has", () => {
    expect(problems(withProcesses("      - {name: p0, vcpu: 2}\n"))).toEqual([
      'demo.yaml:8:26: vms[0].processes[0].vcpu: vCPU 2 does not exist; "vm0" has 2 vCPUs, so 0 to 1',
    ]);
  });

  test("names are unique, and switch and munmap name something that exists", () => {
    expect(problems(`${MINIMAL}  - name: vm0\n    ram: 1GiB\n`)).toEqual([
      'demo.yaml:6:11: vms[1].name: "vm0" is already the name of vms[0]; VM names are unique',
    ]);
    expect(problems(withProcesses("      - {name: p0}\n      - {name: p0}\n"))).toEqual([
      'demo.yaml:9:16: vms[0].processes[1].name: "p0" is already the name of processes[0]; process names are unique in a VM',
    ]);
    expect(problems(withProcesses("      - {name: p0, steps: [{switch: {to: p0}}]}\n"))).toEqual([
      'demo.yaml:8:42: vms[0].processes[0].steps[0].switch.to: "p0" is this process; switch to another process of "vm0"',
    ]);
    expect(
      problems(
        withProcesses(
          "      - name: p0\n        steps:\n          - mmap: {name: heap, size: 1MiB}\n          - munmap: {name: haep}\n          - munmap: {name: heap}\n",
        ),
      ),
    ).toEqual([
      'demo.yaml:11:28: vms[0].processes[0].steps[1].munmap.name: no region named "haep" is mapped at this step; did you mean "heap"?',
    ]);
    expect(
      problems(
        withProcesses(
          "      - name: p0\n        steps:\n          - mmap: {name: a, size: 4KiB}\n          - mmap: {name: a, size: 4KiB}\n",
        ),
      ),
    ).toEqual([
      'demo.yaml:11:26: vms[0].processes[0].steps[1].mmap.name: region "a" is already mapped; munmap it first or choose another name',
    ]);
  });

  test("workload steps name a mapped region or give a size, and fit in the region", () => {
    expect(problems(withProcesses("      - name: p0\n        steps:\n          - touch: {op: read}\n"))).toEqual([
      "demo.yaml:10:20: vms[0].processes[0].steps[0].touch: neither size nor name given; size: for a fresh region (like 64MiB), or name: of a region an earlier mmap step made",
    ]);
    expect(
      problems(
        withProcesses(
          "      - name: p0\n        steps:\n          - mmap: {name: a, size: 4KiB}\n          - munmap: {name: a}\n          - touch: {name: a, op: read}\n",
        ),
      ),
    ).toEqual([
      'demo.yaml:12:27: vms[0].processes[0].steps[2].touch.name: no region named "a" is mapped at this step; known: none (or map it first with an mmap step)',
    ]);
    expect(
      problems(
        withProcesses(
          "      - name: p0\n        steps:\n          - mmap: {name: a, size: 4KiB}\n          - random: {name: a, size: 8KiB, accesses: 1, writeRatio: 1.5}\n",
        ),
      ),
    ).toEqual(["demo.yaml:11:68: vms[0].processes[0].steps[1].random.writeRatio: 1.5 is above 1; a fraction from 0 to 1"]);
    expect(
      problems(
        withProcesses(
          "      - name: p0\n        steps:\n          - mmap: {name: a, size: 4KiB}\n          - random: {name: a, size: 8KiB, accesses: 1, writeRatio: 0.5}\n",
        ),
      ),
    ).toEqual([
      'demo.yaml:11:37: vms[0].processes[0].steps[1].random.size: 8KiB is larger than region "a" (4KiB); at most 4KiB, or leave size out',
    ]);
    expect(
      problems(withProcesses("      - name: p0\n        steps:\n          - {touch: {size: 4KiB, op: read}, munmap: {name: a}}\n")),
    ).toEqual([
      "demo.yaml:10:13: vms[0].processes[0].steps[0]: touch and munmap in one step; one step kind per step, so split them into two",
    ]);
  });

  test("watermarks are ordered and below host RAM", () => {
    expect(problems(MINIMAL.replace("  ram: 2GiB", "  ram: 2GiB\n  watermarks: {min: 16MiB, low: 8MiB, high: 24MiB}"))).toEqual([
      "demo.yaml:3:33: host.watermarks.low: 8MiB is below min (16MiB); min <= low <= high",
    ]);
    expect(problems(MINIMAL.replace("  ram: 2GiB", "  ram: 2GiB\n  watermarks: {min: 1GiB, low: 2GiB, high: 3GiB}"))).toEqual([
      "demo.yaml:3:44: host.watermarks.high: 3GiB is not below host RAM (2GiB); watermarks well below host.ram",
    ]);
  });

  test("timeline actions name a VM of the scenario and a range inside guest-physical space", () => {
    expect(problems(`${MINIMAL}timeline:\n  - {at: {cycles: 1}, madvise: {vm: vm1, gpa: 0, size: 4KiB, advice: FREE}}\n`)).toEqual([
      'demo.yaml:7:37: timeline[0].madvise.vm: no VM named "vm1"; did you mean "vm0"?',
    ]);
    expect(
      problems(`${MINIMAL}timeline:\n  - {at: {cycles: 1, accesses: 2}, madvise: {vm: vm0, gpa: 0x1001, size: 4KiB, advice: free}}\n`),
    ).toEqual([
      "demo.yaml:7:10: timeline[0].at: both cycles and accesses given; exactly one of {cycles: N}, {accesses: N} or {phase: name}",
      "demo.yaml:7:60: timeline[0].madvise.gpa: 4097B is not a multiple of 4KiB; use a multiple, e.g. 8KiB",
      'demo.yaml:7:88: timeline[0].madvise.advice: "free" is not a valid advice; did you mean "FREE"? (one of DONTNEED, FREE, PAGEOUT, COLD)',
    ]);
    expect(problems(`${MINIMAL}timeline:\n  - {at: {cycles: 1}}\n`)).toEqual([
      "demo.yaml:7:5: timeline[0]: no timeline action given; one of madvise, balloon, migrate, dirtyLog",
    ]);
  });

  test("backings agree with the host: hugetlb alignment and pool, thp policy, one CPU vendor", () => {
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: 1025MiB\n    backing: hugetlb-2m"))).toEqual([
      "demo.yaml:5:10: vms[0].ram: 1025MiB is not a multiple of the 2MiB pages of hugetlb-2m backing; use 1026MiB",
    ]);
    expect(problems(MINIMAL.replace("ram: 1GiB", "ram: 4GiB\n    backing: hugetlb-1g"))).toEqual([
      "demo.yaml:6:14: vms[0].backing: hugetlb-backed guest RAM adds up to 4GiB, more than host RAM (2GiB); hugetlb pages are never swapped, so they must fit in host.ram",
    ]);
    expect(problems(`${MINIMAL}    backing: thp\n`)).toEqual([
      'demo.yaml:6:14: vms[0].backing: "thp" backing does nothing while host.thp is never; set host.thp to madvise or always, or use backing 4k',
    ]);
    expect(problems(`${MINIMAL}  - {name: vm1, ram: 1GiB, mmu: npt}\n`)).toEqual([
      'demo.yaml:6:33: vms[1].mmu: "npt" on a host where vms[0] uses "ept": EPT is Intel\'s and NPT AMD\'s, and a host has one vendor; use "ept" (or shadow) for every VM',
    ]);
  });
});

describe("the built-in scenario", () => {
  test("loads, and tells SEED-PATHS' story: a guest larger than the host writes more than host RAM, then reads it back", () => {
    const s = loadScenario(DEFAULT_SCENARIO_YAML, "<built-in>");
    const vm = s.vms[0]!;
    expect(vm.mmu).toBe("ept");
    expect(vm.prealloc).toBe(false);
    expect(vm.ram).toBeGreaterThan(s.host.ram);
    expect(s.host.swap).toBeGreaterThan(0);
    const steps = vm.processes[0]!.steps;
    const touches = steps.filter((st) => st.kind === "touch");
    expect(touches.map((t) => t.op)).toEqual(["write", "read"]);
    for (const t of touches) expect(t.size).toBeGreaterThan(s.host.ram);
    expect(touches[0]!.size).toBeLessThanOrEqual(s.host.ram + s.host.swap);
  });

  test("comments every line that sets something", () => {
    const lines = DEFAULT_SCENARIO_YAML.split("\n").filter((l) => /:\s*\S/.test(l.replace(/#.*/, "")) && !/^\s*- name:|^\s*name:/.test(l));
    for (const line of lines) expect(line).toMatch(/#/);
  });
});
