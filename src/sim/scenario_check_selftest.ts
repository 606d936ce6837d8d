// SPDX-License-Identifier: MIT
// Cross-field checks of a selftest-style guest (guest.kernel: none): its spaces and regions,
// one guest program per vCPU, and steps that address regions and spaces that exist and are
// mapped in the space loaded at that step. Also refuses its keys and steps in a guest with a
// kernel, and the kernel's steps in a guest without one.

import { LEVEL_SIZE, PAGE_2M, PAGE_SIZE } from "../hw/addr.js";
import type { RawScenario } from "./scenario_schema.js";
import { didYouMean } from "./scenario_suggest.js";
import { formatSize } from "./size.js";

type RawVm = RawScenario["vms"][number];
type RawStep = RawVm["processes"][number]["steps"][number];
type Path = (string | number)[];
type Report = (path: Path, message: string) => void;

/** Step kinds of a guest with a kernel, refused without one. */
const KERNEL_STEPS = new Set(["mmap", "mmapFile", "munmap", "switch", "mmapChurn", "processChurn", "trace"]);
/** Step kinds of a selftest-style guest only. */
export const SELFTEST_STEPS = new Set(["setPte", "setPde", "invlpg", "loadCr3", "exit"]);

/** Page size of a region, in bytes. */
export const regionPageSize = (page: "4k" | "2m") => (page === "2m" ? PAGE_2M : PAGE_SIZE);

function unknown(what: string, given: string, known: Iterable<string>): string {
  const names = [...known];
  const guess = didYouMean(given, names);
  const list = names.length === 0 ? "none" : names.map((n) => `"${n}"`).join(", ");
  return `no ${what} named "${given}"; ${guess === undefined ? `known: ${list}` : `did you mean "${guess}"?`}`;
}

/** Region sizes by name, for filling a workload step's default size. */
export function selftestRegionSizes(vm: RawVm): Map<string, number> {
  const m = new Map<string, number>();
  for (const sp of vm.guest.spaces ?? []) for (const r of sp.regions) m.set(r.name, r.size);
  return m;
}

/** The checks for one VM; `checkRegionStep` checks a workload step against its region's size. */
export function checkSelftestVm(
  vm: RawVm,
  at: (...rest: Path) => Path,
  report: Report,
  checkRegionStep: (st: RawStep, live: Map<string, number>, here: (...rest: Path) => Path) => void,
): void {
  if (vm.guest.kernel !== "none") {
    if (vm.guest.spaces !== undefined)
      report(at("guest", "spaces"), `spaces are for a guest without a kernel; set guest.kernel: none, or remove spaces`);
    vm.processes.forEach((p, j) => {
      if (p.space !== undefined)
        report(at("processes", j, "space"), `space is for a guest without a kernel; set guest.kernel: none, or remove it`);
      p.steps.forEach((st, k) => {
        if (SELFTEST_STEPS.has(st.kind))
          report(
            at("processes", j, "steps", k, st.kind),
            `${st.kind} is a step of a guest without a kernel (guest.kernel: none, whose page tables the VMM builds); a guest with a kernel edits its tables through mmap and munmap`,
          );
      });
    });
    return;
  }
  const spaces = vm.guest.spaces ?? [];
  if (spaces.length === 0) {
    report(
      at("guest"),
      `kernel none needs at least one address space; add spaces: [{name: s0, regions: [{name: r0, gva: 0x40000000, size: 16MiB}]}]`,
    );
    return;
  }
  const levels = vm.guest.levels;
  const topSize = LEVEL_SIZE[levels]!;
  const vaLimit = LEVEL_SIZE[levels + 1]! / 2;
  const spaceIdx = new Map<string, number>();
  /** Region name -> [space index, page size, pages]. */
  const regions = new Map<string, { space: number; pageSize: number; pages: number; size: number }>();
  /** Top-level slots each space uses (its own regions and those it copies). */
  const slots: Set<number>[] = [];
  /** Spaces each space sees regions of: itself and the spaces it shares from. */
  const sees: Set<number>[] = [];
  let bytes = 0;
  spaces.forEach((sp, i) => {
    const here = (...rest: Path) => at("guest", "spaces", i, ...rest);
    if (spaceIdx.has(sp.name))
      report(here("name"), `"${sp.name}" is already the name of spaces[${spaceIdx.get(sp.name)}]; names are unique`);
    const mine = new Set<number>();
    const seen = new Set<number>([i]);
    let shared = new Set<number>();
    if (sp.share !== undefined) {
      const j = spaceIdx.get(sp.share);
      if (j === undefined)
        report(here("share"), `${unknown("earlier space", sp.share, spaceIdx.keys())}; share names a space listed before this one`);
      else {
        shared = new Set(slots[j]!);
        for (const s of sees[j]!) seen.add(s);
      }
    }
    spaceIdx.set(sp.name, i);
    const ranges: [number, number, string][] = [];
    sp.regions.forEach((r, k) => {
      const rat = (...rest: Path) => here("regions", k, ...rest);
      if (regions.has(r.name)) report(rat("name"), `region "${r.name}" is already defined; region names are unique in a VM`);
      const pageSize = regionPageSize(r.page);
      if (r.gva % pageSize !== 0)
        report(rat("gva"), `0x${r.gva.toString(16)} is not a multiple of the ${r.page} page size; align it to ${formatSize(pageSize)}`);
      if (r.size % pageSize !== 0)
        report(
          rat("size"),
          `${formatSize(r.size)} is not a multiple of the ${r.page} page size; use ${formatSize(Math.ceil(r.size / pageSize) * pageSize)}`,
        );
      if (r.gva + r.size > vaLimit)
        report(
          rat("gva"),
          `the region ends past ${formatSize(vaLimit)}, the lower half of ${levels}-level addresses; place it below 0x${vaLimit.toString(16)}`,
        );
      for (const [s, e, other] of ranges)
        if (r.gva < e && s < r.gva + r.size) report(rat("gva"), `the region overlaps region "${other}" of this space; move it`);
      ranges.push([r.gva, r.gva + r.size, r.name]);
      for (let slot = Math.floor(r.gva / topSize); slot * topSize < r.gva + r.size; slot++) {
        if (shared.has(slot)) {
          report(
            rat("gva"),
            `the region falls in a ${formatSize(topSize)} slot whose tables this space shares with "${sp.share}"; mapping it would change "${sp.share}" too, so place it in another slot`,
          );
          break;
        }
        mine.add(slot);
      }
      regions.set(r.name, { space: i, pageSize, pages: r.size / pageSize, size: r.size });
      bytes += r.size;
    });
    slots.push(new Set([...mine, ...shared]));
    sees.push(seen);
  });
  // Data regions go at the top of RAM; the VMM's tables start at 0x180000 (KVM_GUEST_PAGE_TABLE_MIN_PADDR).
  if (bytes + 0x180000 + PAGE_2M > vm.ram)
    report(
      at("ram"),
      `${formatSize(vm.ram)} cannot hold the regions (${formatSize(bytes)}) and their page tables; at least ${formatSize(bytes + 0x180000 + PAGE_2M)}`,
    );

  const cpus = new Map<number, number>();
  const sizes = new Map([...regions].map(([n, r]) => [n, r.size]));
  vm.processes.forEach((p, j) => {
    const pat = (...rest: Path) => at("processes", j, ...rest);
    const other = cpus.get(p.vcpu);
    if (other !== undefined)
      report(pat("vcpu"), `vCPU ${p.vcpu} already runs processes[${other}]; without a kernel each vCPU runs one guest program`);
    cpus.set(p.vcpu, j);
    let cur = 0;
    if (p.space !== undefined) {
      const s = spaceIdx.get(p.space);
      if (s === undefined) report(pat("space"), unknown("space", p.space, spaceIdx.keys()));
      else cur = s;
    }
    p.steps.forEach((st, k) => {
      const here = (...rest: Path) => pat("steps", k, st.kind, ...rest);
      if (KERNEL_STEPS.has(st.kind)) {
        report(
          here(),
          `${st.kind} needs a guest kernel; with guest.kernel none the VMM maps every region before the run, so use workload steps with name: and setPte, setPde, invlpg, loadCr3 or exit`,
        );
        return;
      }
      switch (st.kind) {
        case "loadCr3": {
          const s = spaceIdx.get(st.space);
          if (s === undefined) report(here("space"), unknown("space", st.space, spaceIdx.keys()));
          else cur = s;
          if (st.noFlush && !vm.guest.pcid)
            report(here("noFlush"), `CR3 bit 63 is reserved without CR4.PCIDE (a #GP); set guest.pcid: true or remove noFlush`);
          break;
        }
        case "setPte":
        case "setPde":
        case "invlpg": {
          const r = regions.get(st.region);
          if (r === undefined) {
            report(here("region"), unknown("region", st.region, regions.keys()));
            break;
          }
          if (st.page >= r.pages)
            report(here("page"), `page ${st.page} is past the end of "${st.region}" (${r.pages} pages); 0 to ${r.pages - 1}`);
          if (st.kind === "setPte" && r.pageSize !== PAGE_SIZE)
            report(here("region"), `"${st.region}" is mapped with 2 MiB pages, whose leaf is the PDE; use setPde`);
          if (st.kind === "setPde" && r.pageSize === PAGE_SIZE && st.dirty)
            report(here("dirty"), `the PDE above a 4 KiB region points at a table, which has no D bit; remove dirty`);
          break;
        }
        case "touch":
        case "random":
        case "sequential":
        case "zipf":
        case "pointerChase":
        case "phases": {
          if (st.name === undefined) {
            report(here(), `a workload step of a guest without a kernel needs name: a region of guest.spaces (no kernel maps a fresh one)`);
            break;
          }
          const r = regions.get(st.name);
          if (r === undefined) {
            report(here("name"), unknown("region", st.name, regions.keys()));
            break;
          }
          if (!sees[cur]!.has(r.space))
            report(
              here("name"),
              `region "${st.name}" is not mapped in space "${spaces[cur]!.name}", the one loaded at this step; load its space "${spaces[r.space]!.name}" first with loadCr3`,
            );
          checkRegionStep(st, sizes, here);
          break;
        }
        default:
          break;
      }
    });
  });
}
