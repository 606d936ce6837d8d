#!/usr/bin/env node
// npm run mutants: the catalogue of injected kernel bugs. Each mutant is a set of exact text
// edits to a temporary copy of the project; then the catchers (`memvirt check` on the shipped
// check scenarios, or a Vitest file) run on that copy, each under a 60 s CPU limit, until one
// fails with a clear finding (exit 1). Prints a table (mutant, caught by, CPU time) and exits 1
// if any mutant survives, hangs, or no longer applies (its text is not in the code: update it).
//   node tools/mutants.mjs [--fast] [name...]   (--fast: the CI half; --verify: only check every edit still applies)
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const CPU_LIMIT = 60;
const root = resolve(import.meta.dirname, "..");
const check = (scenario, ...args) => ({ kind: "check", scenario, args: ["--schedules", "4", ...args] });
const test = (file) => ({ kind: "test", file });
const SMP = check("examples/check/smp-swap.yaml");
const THP = check("examples/check/thp-npt.yaml");
const SHADOW = check("examples/check/shadow-churn.yaml");
const ZERO = check("examples/selftest-demand-paging.yaml", "--schedules", "2");
const RULES = test("src/sim/kernel_rules.test.ts");
const DIRTY = test("src/sim/dirty.test.ts");
/** Tried after a mutant's own catchers, in this order. */
const ALL = [SMP, THP, SHADOW, ZERO, RULES];

/** The catalogue: name, what the bug is, the edits (file, find, replace), the catchers to try first; fast: in npm test. */
export const MUTANTS = [
  {
    name: "no-flush-after-zap",
    bug: "the notifier zaps sptes but never flushes the TLBs",
    edits: [["src/kvm/kvm.ts", "    if (zapped > 0) kvm.flushRemoteTlbs();\n", ""]],
    by: [SMP],
    fast: true,
  },
  {
    name: "reclaim-skips-notifier",
    bug: "try_to_unmap_one() changes the PTE without invalidate_range_start/end",
    edits: [
      ["src/host/rmap.ts", "  invalidateRangeStart(k.bus, mm.notifiers, range);\n  // ptep_clear_flush()", "  // ptep_clear_flush()"],
      ["src/host/rmap.ts", "  invalidateRangeEnd(k.bus, mm.notifiers, range);\n  return ok;", "  return ok;"],
    ],
    by: [SMP],
    fast: true,
  },
  {
    name: "aging-keeps-accessed",
    bug: "clear_young reports young but does not clear the accessed bit",
    edits: [["src/kvm/tdp_mmu.ts", "        if (clear) this.setSpte(off, it.base, it.level, clearAccessed(this.masks, lo), hi);\n", ""]],
    by: [RULES],
  },
  {
    name: "munmap-no-flush",
    bug: "the guest's munmap frees pages and tables without flushing the TLB",
    edits: [["src/guest/kernel.ts", "    if (g.needsFlush) {", "    if (g.needsFlush && g.fullmm) {"]],
    by: [SMP],
  },
  {
    name: "seq-not-bumped",
    bug: "invalidate_range_end never bumps mmu_invalidate_seq",
    edits: [["src/kvm/kvm.ts", "    this.mmuInvalidateSeq++;\n    this.mmuInvalidateInProgress--;", "    this.mmuInvalidateInProgress--;"]],
    by: [SMP],
  },
  {
    name: "skip-seq-check",
    bug: "the fault installs without re-checking the invalidation (the built-in --debug-skip-seq-check)",
    edits: [["src/sim/engine.ts", "kvm.debugSkipSeqCheck = opts.debugSkipSeqCheck === true;", "kvm.debugSkipSeqCheck = true;"]],
    by: [SMP],
  },
  {
    name: "reclaim-drops-dirty",
    bug: "reclaim frees a dirty page without writing it to swap",
    edits: [["src/host/vmscan.ts", "    if ((f & PG_dirty) !== 0 && (f & PG_swapbacked) !== 0) swapWritepage(k, pfn); // pageout()\n", ""]],
    by: [SMP],
  },
  {
    name: "swapin-no-read",
    bug: "swap-in maps the new page without reading the slot",
    edits: [["src/host/swap_state.ts", "  k.mem.content[pfn] = swap.data[slot]!;\n", ""]],
    by: [SMP],
    fast: true,
  },
  {
    name: "tdp-ignores-host-ro",
    bug: "the TDP fault maps writable what the host maps read-only (zero page, COW)",
    edits: [["src/kvm/page_fault.ts", "    writable = host.gupWritable;\n", ""]],
    by: [RULES],
    fast: true,
  },
  {
    name: "flush-one-vcpu",
    bug: "kvm_flush_remote_tlbs() reaches only the first vCPU",
    edits: [
      [
        "src/kvm/kvm.ts",
        "    for (const v of this.vcpus) {\n      v.requestTlbFlush();",
        "    for (const v of this.vcpus.slice(0, 1)) {\n      v.requestTlbFlush();",
      ],
    ],
    by: [SMP],
  },
  {
    name: "zap-off-by-one",
    bug: "the notifier zaps one page less than its range",
    edits: [
      [
        "src/kvm/kvm.ts",
        "      zapped += kvm.unmapGfnRange(gfnStart, gfnEnd);",
        "      zapped += kvm.unmapGfnRange(gfnStart, gfnEnd - 1);",
      ],
    ],
    by: [SMP],
  },
  {
    name: "shadow-rmap-unmap-noop",
    bug: "the shadow MMU's unmap through the rmaps does nothing",
    edits: [["src/kvm/shadow_mmu.ts", "    return this.rmap.unmapGfnRange(start, end);", "    return 0;"]],
    by: [SHADOW],
    fast: true,
  },
  {
    name: "retry-ignores-in-progress",
    bug: "the retry check compares the sequence only, ignoring an invalidation in progress",
    edits: [
      [
        "src/kvm/kvm.ts",
        "    if (this.mmuInvalidateInProgress > 0 && gfn >= this.mmuInvalidateRangeStart && gfn < this.mmuInvalidateRangeEnd) return true;\n",
        "",
      ],
    ],
    by: [SMP],
    fast: true,
  },
  {
    name: "shadow-no-write-protect",
    bug: "the shadow MMU does not write-protect the guest tables it shadows",
    edits: [["src/kvm/shadow_mmu_pages.ts", "    if (this.rmap.writeProtectGfn(sp.gfn)) this.owner.flushRemoteTlbs();\n", ""]],
    by: [SHADOW],
  },
  {
    name: "no-mark-dirty",
    bug: "KVM does not mark the host folio dirty when it maps it writable",
    edits: [["src/kvm/gup.ts", "    this.host.folioMarkDirty(pfn);\n", ""]],
    by: [DIRTY],
  },
  {
    name: "guest-no-invlpg",
    bug: "the guest changes a PTE without INVLPG (flush_tlb_page() does nothing)",
    edits: [["src/guest/tlb.ts", "        c.port.invlpg(a as Gva);\n", ""]],
    by: [SMP],
  },
  {
    name: "thp-split-loses-subpage",
    bug: "splitting a huge PMD maps 511 of the 512 subpages",
    edits: [
      [
        "src/host/huge_memory.ts",
        "    for (let i = 0; i < HPAGE_PMD_NR; i++) {\n      k.setEntry(mm, pt, i, 1, haddr + i * PAGE_SIZE, frameLo(pfn + i, flags)",
        "    for (let i = 0; i < HPAGE_PMD_NR - 1; i++) {\n      k.setEntry(mm, pt, i, 1, haddr + i * PAGE_SIZE, frameLo(pfn + i, flags)",
      ],
    ],
    by: [THP],
  },
];

function label(c) {
  return c.kind === "check" ? `check ${c.scenario.replace(/^examples\//, "")}` : `test ${c.file.replace(/^src\//, "")}`;
}

/** A copy of the project with the mutant's edits; throws if an edit's text is not found exactly once. */
function mutate(m) {
  const dir = mkdtempSync(join(tmpdir(), `memvirt-mutant-${m.name}-`));
  for (const f of ["src", "examples", "package.json", "tsconfig.json", "tsconfig.base.json", "tsconfig.core.json", "vitest.config.ts"])
    cpSync(join(root, f), join(dir, f), { recursive: true });
  symlinkSync(realpathSync(join(root, "node_modules")), join(dir, "node_modules"));
  for (const [file, find, replace] of m.edits) {
    const p = join(dir, file);
    const text = readFileSync(p, "utf8");
    const at = text.indexOf(find);
    if (at < 0 || text.indexOf(find, at + 1) >= 0)
      throw new Error(`${m.name}: ${file} holds ${at < 0 ? "no" : "more than one"} copy of the text to replace; update tools/mutants.mjs`);
    writeFileSync(p, text.slice(0, at) + replace + text.slice(at + find.length));
  }
  return dir;
}

/** Runs one catcher on a copy under the CPU limit: { caught, cpu, why }; cpu counts every process it started. */
function run(dir, c) {
  const bin = (n) => join(dir, "node_modules", ".bin", n);
  const cmd =
    c.kind === "check" ? [bin("tsx"), "src/cli/main.ts", "check", c.scenario, ...c.args] : [bin("vitest"), "run", c.file, "--reporter=dot"];
  const timesFile = join(dir, ".times");
  const script = `ulimit -t ${CPU_LIMIT}; "$@"; rc=$?; times > "${timesFile}"; exit $rc`;
  const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
  const r = spawnSync("bash", ["-c", script, "mutant", ...cmd], { cwd: dir, env, encoding: "utf8", timeout: 4 * CPU_LIMIT * 1000 });
  let cpu = Number.NaN;
  try {
    const kids = readFileSync(timesFile, "utf8").split("\n")[1] ?? "";
    cpu = kids.split(/\s+/).reduce((a, t) => {
      const mm = /^(\d+)m([\d.]+)s$/.exec(t);
      return mm ? a + Number(mm[1]) * 60 + Number(mm[2]) : a;
    }, 0);
  } catch {}
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.error || r.signal || r.status === 152 || r.status === 137 || cpu > CPU_LIMIT)
    return { caught: false, cpu, why: `hung (killed after ${CPU_LIMIT} s of CPU)` };
  if (r.status !== 1) return { caught: false, cpu, why: r.status === 0 ? "passed" : `exit ${r.status}` };
  const finding =
    c.kind === "check"
      ? (/^schedule \d+:\n\s+(.*)$/m.exec(out)?.[1] ?? /memvirt: run failed under schedule \d+: (.*)$/m.exec(out)?.[1])
      : (/(?:FAIL|×)\s+(.*)$/m.exec(out)?.[1] ?? "a test failed");
  if (finding === undefined) return { caught: false, cpu, why: "exit 1 without a finding" };
  return { caught: true, cpu, why: finding };
}

const argv = process.argv.slice(2);
if (argv.includes("--verify")) {
  let stale = 0;
  for (const m of MUTANTS)
    for (const [file, find] of m.edits) {
      const text = readFileSync(join(root, file), "utf8");
      const at = text.indexOf(find);
      if (at >= 0 && text.indexOf(find, at + 1) < 0) continue;
      stale++;
      console.error(`${m.name}: ${file} holds ${at < 0 ? "no" : "more than one"} copy of the text to replace; update tools/mutants.mjs`);
    }
  console.log(`${MUTANTS.length} mutants, ${stale} stale edits`);
  process.exit(stale > 0 ? 1 : 0);
}
const fast = argv.includes("--fast");
const names = argv.filter((a) => !a.startsWith("--"));
const chosen = MUTANTS.filter((m) => (names.length > 0 ? names.includes(m.name) : !fast || m.fast));
if (names.length > 0 && chosen.length !== names.length) {
  console.error(`mutants: no such mutant among ${names.join(", ")}; known: ${MUTANTS.map((m) => m.name).join(", ")}`);
  process.exit(2);
}
const rows = [];
let failed = 0;
for (const m of chosen) {
  let dir;
  let row;
  try {
    dir = mutate(m);
    const tried = [];
    let cpu = 0;
    for (const c of [...m.by, ...ALL.filter((a) => !m.by.includes(a))]) {
      const r = run(dir, c);
      cpu += r.cpu;
      tried.push(`${label(c)}: ${r.why}`);
      if (r.caught) {
        row = { mutant: m.name, caughtBy: label(c), cpu, finding: r.why };
        break;
      }
      if (r.why.startsWith("hung")) {
        row = { mutant: m.name, caughtBy: `SURVIVED: ${label(c)} ${r.why}`, cpu, finding: "" };
        break;
      }
    }
    row ??= { mutant: m.name, caughtBy: `SURVIVED (${tried.join("; ")})`, cpu, finding: "" };
  } catch (e) {
    row = { mutant: m.name, caughtBy: `STALE: ${e.message}`, cpu: Number.NaN, finding: "" };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  if (!row.caughtBy.startsWith("check") && !row.caughtBy.startsWith("test")) failed++;
  rows.push(row);
  console.log(
    `${row.mutant.padEnd(26)} ${row.caughtBy.padEnd(34)} ${Number.isNaN(row.cpu) ? "-" : `${row.cpu.toFixed(1)} s`}  ${row.finding.slice(0, 110)}`,
  );
}
console.log(`\n| mutant | caught by | CPU |\n|---|---|---|`);
for (const r of rows) console.log(`| ${r.mutant} | ${r.caughtBy} | ${Number.isNaN(r.cpu) ? "-" : `${r.cpu.toFixed(1)} s`} |`);
console.log(`\n${rows.length - failed} of ${rows.length} mutants caught${failed > 0 ? `; ${failed} not` : ""}`);
process.exit(failed > 0 ? 1 : 0);
