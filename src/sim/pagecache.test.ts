// SPDX-License-Identifier: MIT
// Trace replay through the guest's page cache: a real program's code and read-only data pages
// each get a guest frame of their own (read from the virtual disk), as in the real run.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { AccessBatch, OP_WRITE } from "../workload/stream.js";
import { BufferSource, OP_FETCH, looksLikeProgramImage, openTrace } from "../workload/trace.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

const traceBytes = (path: string) => readFileSync(new URL(path, import.meta.url));

/** What the replay rule (StepRunner.mapTraceRegions) makes of a trace, page by page, counted from the trace itself. */
function classify(bytes: Uint8Array) {
  const t = openTrace(new BufferSource(bytes), "t");
  const b = new AccessBatch(8192);
  const first = new Map<number, number>();
  const written = new Set<number>();
  for (let k = t.fill(b); k > 0; k = t.fill(b)) {
    for (let i = 0; i < k; i++) {
      const page = Math.floor(b.addrs[i]! / 4096);
      const op = b.ops[i]!;
      if (!first.has(page)) first.set(page, op);
      if (op === OP_WRITE) written.add(page);
    }
  }
  let file = 0; // first touch a read or fetch in a program-image range: a page-cache page
  let cow = 0; // ... and written later: a private copy too (wp_page_copy)
  let anon = 0; // first touch a write: a cleared anonymous page
  let zero = 0; // first touch a read elsewhere: the zero page
  let zeroThenWritten = 0;
  for (const [page, op] of first) {
    if (op === OP_WRITE) anon++;
    else if (op === OP_FETCH || looksLikeProgramImage(page * 4096)) {
      file++;
      if (written.has(page)) cow++;
    } else {
      zero++;
      if (written.has(page)) zeroThenWritten++;
    }
  }
  return { accesses: t.count, distinct: first.size, file, cow, anon, zero, zeroThenWritten };
}

function replay(file: string, bytes: Uint8Array, mmu = "ept") {
  const s = loadScenario(
    `seed: 1\nhost: {ram: 1GiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: 512MiB\n    mmu: ${mmu}\n    processes:\n      - name: p\n        steps:\n          - trace: {file: ${file}}\n`,
    "t.yaml",
  );
  const e = new Engine(s, { sampleEvery: 0, openFile: () => new BufferSource(bytes) });
  const r = e.run();
  return { r, vm: e.machine.vms[0]!, e };
}

describe("trace replay through the guest page cache", () => {
  for (const [name, path] of [
    ["GNU sort", "../../examples/traces/sort.mvt.gz"],
    ["gzip", "../../examples/traces/gzip.mvt.gz"],
    ["/bin/true (Lackey text, with instruction fetches)", "../../test/fixtures/true.lackey.gz"],
  ] as const) {
    test(`${name}: one guest frame per distinct page touched, plus a copy per written file page; an EPT violation for each frame and table`, () => {
      const bytes = traceBytes(path);
      const c = classify(bytes);
      const { r, vm } = replay(path.split("/").pop()!, bytes);
      expect(r.accesses).toBe(c.accesses);
      expect(r.check.dataErrors).toBe(0);
      expect(r.check.invariantViolations).toBe(0);
      const g = vm.guest.stats;
      // Each file page read once from the disk, into a frame of its own.
      expect([g.pgmajfault, g.disk_reads, g.pgpgin, g.nr_file_pages]).toEqual([c.file, c.file, 4 * c.file, c.file]);
      expect(g.nr_mapped).toBe(c.file - c.cow);
      expect(g.nr_anon_pages).toBe(c.anon + c.cow + c.zeroThenWritten);
      expect(g.cow_faults).toBe(c.cow + c.zeroThenWritten);
      expect(g.zero_page_maps).toBe(c.zero);
      // Every guest frame the guest allocated is touched once through EPT: the boot frames
      // (swapper_pg_dir, the zero page), the page tables, and the data frames above.
      const frames = c.file + c.anon + c.cow + c.zeroThenWritten;
      expect(g.pgalloc).toBe(2 + g.nr_page_table_pages + frames);
      const pfFixed = r.vms[0]!.stats.pf_fixed!;
      expect(pfFixed).toBe(g.pgalloc);
      // The check: at least one EPT violation per distinct page, at most that plus the guest's own pages.
      expect(pfFixed).toBeGreaterThanOrEqual(c.distinct);
      expect(pfFixed - c.distinct).toBe(2 + g.nr_page_table_pages + c.cow + c.zeroThenWritten - c.zero);
    });
  }

  test("the shipped sort trace: its figures", () => {
    const c = classify(traceBytes("../../examples/traces/sort.mvt.gz"));
    expect(c).toEqual({ accesses: 1218598, distinct: 244, file: 211, cow: 5, anon: 33, zero: 0, zeroThenWritten: 0 });
  });

  test("shadow paging replays the sort trace with the same guest-side counts and reads", () => {
    const bytes = traceBytes("../../examples/traces/sort.mvt.gz");
    const ept = replay("sort.mvt.gz", bytes, "ept");
    const shadow = replay("sort.mvt.gz", bytes, "shadow");
    expect(shadow.r.check.dataErrors).toBe(0);
    for (const k of ["pgmajfault", "nr_file_pages", "nr_anon_pages", "pgalloc", "cow_faults"])
      expect(shadow.vm.guest.stats[k as "pgalloc"]).toBe(ept.vm.guest.stats[k as "pgalloc"]);
    expect(shadow.e.machine.checker.readDigest).toBe(ept.e.machine.checker.readDigest);
  });
});

describe("mmapFile steps", () => {
  const yaml = (steps: string[], ram = "512MiB") =>
    `seed: 3\nhost: {ram: 1GiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: ${ram}\n    mmu: ept\n    processes:\n${steps.join("\n")}\n`;
  const proc = (name: string, steps: string[]) =>
    [`      - name: ${name}`, "        steps:", ...steps.map((x) => `          - ${x}`)].join("\n");

  test("two processes map one file: each page read from the disk once; shared writes are seen by the other, private ones copied", () => {
    const s = loadScenario(
      yaml([
        proc("a", [
          "mmapFile: {name: lib, file: data.bin, size: 1MiB}",
          "touch: {name: lib, op: read}",
          "mmapFile: {name: shm, file: shm.bin, size: 64KiB, shared: true}",
          "touch: {name: shm, op: write}",
        ]),
        proc("b", [
          "mmapFile: {name: lib, file: data.bin, size: 1MiB}",
          "random: {name: lib, accesses: 2000, writeRatio: 0.2}",
          "mmapFile: {name: shm, file: shm.bin, size: 64KiB, shared: true}",
          "random: {name: shm, accesses: 2000, writeRatio: 0.3}",
        ]),
      ]),
      "t.yaml",
    );
    const e = new Engine(s, { sampleEvery: 0 });
    const r = e.run();
    expect(r.check.dataErrors).toBe(0);
    expect(r.check.invariantViolations).toBe(0);
    const g = e.machine.vms[0]!.guest.stats;
    // 256 + 16 file pages, each read once however the two processes interleave.
    expect([g.nr_file_pages, g.pgmajfault, g.pgpgin]).toEqual([272, 272, 272 * 4]);
    expect(g.nr_dirty).toBe(16);
  });

  test("a file page dropped under guest pressure is read again with the same content", () => {
    // 8 MiB of guest RAM; a 12 MiB file read twice: the second pass reads from the disk again.
    const s = loadScenario(
      yaml(
        [proc("a", ["mmapFile: {name: big, file: big.bin, size: 12MiB}", "touch: {name: big, op: read}", "touch: {name: big, op: read}"])],
        "8MiB",
      ),
      "t.yaml",
    );
    const e = new Engine(s, { sampleEvery: 0 });
    const r = e.run();
    expect(r.check.dataErrors).toBe(0);
    const g = e.machine.vms[0]!.guest.stats;
    expect(g.pgsteal_direct).toBeGreaterThan(3072 - 2048);
    expect(g.pgmajfault).toBe(g.nr_file_pages + g.pgsteal_direct);
    expect(g.pgmajfault).toBeGreaterThan(3072);
  });

  test("bad steps name the place and the fix", () => {
    expect(() => loadScenario(yaml([proc("a", ["mmapFile: {name: x, file: f, size: 4KiB, share: true}"])]), "t.yaml")).toThrow(
      /steps\[0\]\.mmapFile.*share/s,
    );
    expect(() =>
      loadScenario(yaml([proc("a", ["mmapFile: {name: x, file: f, size: 4KiB}", "mmapFile: {name: x, file: g, size: 4KiB}"])]), "t.yaml"),
    ).toThrow(/region "x" is already mapped/);
  });
});
