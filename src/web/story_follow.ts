// SPDX-License-Identifier: MIT
// The worker's half of the story's cursor: for each event kept for the story, the page it is
// about (gpa, hva, and the guest gva that maps it) and the three trees on that page's path,
// read right after the event: the guest's page tables, KVM's EPT/NPT (or shadow) tables and
// QEMU's own page tables in the host. Read-only, like story_trees.ts: table words from
// PhysMem, mappings from QEMU's ranges and KVM's memslots, never a walk that keeps state.

import type { SimEvent } from "../hw/events.js";
import { entryPfn, formatX86Pte, PTE_P, PTE_PS, x86LevelName } from "../hw/x86_pte.js";
import { TableIter, physTables } from "../hw/table_iter.js";
import { leafPfn, swpOffset } from "../host/pgtable.js";
import type { Machine, VmState } from "../sim/machine.js";
import type { TreeSummary } from "./protocol.js";
import { eventObjects } from "./story_cursor.js";
import { guestTree, kvmTree } from "./story_trees.js";

/** The page the story's panels follow at one event (-1: not known). */
export interface FollowedPage {
  gpa: number;
  hva: number;
  gva: number;
  pid: number;
  /** What the guest keeps at the gpa when it is one of its page tables (no gva maps it as data), else "". */
  role: string;
}

/** The trees on the followed page's path, right after the event (`late`: read when a later event opened the window). */
export interface FollowTrees {
  guest: TreeSummary | null;
  second: TreeSummary | null;
  host: TreeSummary | null;
  late: boolean;
}

export interface Follow {
  page: FollowedPage;
  trees: FollowTrees;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const x86Present = (lo: number) => (lo & PTE_P) !== 0;
const NONE: FollowedPage = { gpa: -1, hva: -1, gva: -1, pid: -1, role: "" };

/** QEMU's page-table path for `hva` in the host: the PTE KVM's notifier protects, a frame or a swap entry. */
export function hostTree(m: Machine, vm: VmState, hva: number): TreeSummary {
  const mm = vm.qemu.mm;
  const tree: TreeSummary = {
    title: `QEMU's page tables in the host (${vm.cfg.name})`,
    addr: hva,
    addrKind: "hva",
    frameKind: "pfn",
    levels: [],
    end: "",
    leaf: -1,
  };
  if (mm.dead) {
    tree.end = "QEMU has exited";
    return tree;
  }
  const page = Math.floor(hva / 4096);
  const it = new TableIter(physTables(m.host.mem), x86Present);
  for (it.start(mm.pgd, 4, page, page + 1); it.valid; it.next()) {
    const { level, lo, hi } = it;
    let n = 0;
    for (let i = 0; i < 512; i++) if (x86Present(it.view.words[it.view.off + 2 * i]!)) n++;
    const swap = !it.present && level === 1 && (lo !== 0 || hi !== 0);
    tree.levels.push({
      level,
      name: x86LevelName(level),
      table: it.table,
      index: it.index,
      present: n,
      lo,
      hi,
      bits: swap ? `swap entry: slot ${swpOffset(lo, hi)} (not present)` : formatX86Pte(lo, hi, level),
      mapped: it.present,
    });
    if (!it.present) {
      tree.end = swap ? `the page is in swap slot ${swpOffset(lo, hi)}` : `no ${x86LevelName(level)}: not backed by the host yet`;
      return tree;
    }
    if (it.leaf) {
      tree.leaf = leafPfn(lo, hi, level) + (page - it.base);
      tree.end = `host frame ${hex(tree.leaf)}`;
      return tree;
    }
  }
  return tree;
}

/** Follows the event stream for the page each event is about; `snapshot()` reads that page's trees now. */
export class PageFollower {
  /** gfn -> the guest process and gva whose PTE maps it (from the guest's own PTE writes; the guest keeps no anonymous rmap here). */
  private readonly guestMap = new Map<number, { pid: number; gva: number }>();
  /** gfn -> the guest page table it holds (from the guest's table writes and CR3 loads). */
  private readonly guestTables = new Map<number, string>();
  private page: FollowedPage = NONE;
  private last: Follow | undefined;
  private lastKey = "";

  constructor(private readonly machine: () => Machine | null) {}

  /** Every event of the run (cheap): the guest's level-1 PTE writes. */
  onEvent(e: SimEvent): void {
    if (e.kind === "guest.cr3_load" || e.kind === "guest.process_create") {
      this.guestTables.set(Number(e.gfn), `the top-level page table of guest pid ${e.pid}`);
    }
    if (e.kind !== "guest.pte_write") return;
    const level = Number(e.level);
    const table = Math.floor(Number(e.gpa) / 4096);
    if (!this.guestTables.has(table)) this.guestTables.set(table, `a guest ${x86LevelName(level)} table of pid ${e.pid}`);
    const lo = Number(e.lo);
    // A present non-leaf entry points at the next table down (no PS bit: 2 MiB and 1 GiB leaves map data).
    if (level > 1 && lo & PTE_P && !(lo & PTE_PS)) {
      const child = entryPfn(lo, Number(e.hi));
      if (!this.guestTables.has(child)) this.guestTables.set(child, `a guest ${x86LevelName(level - 1)} table of pid ${e.pid}`);
    }
    if (level !== 1) return;
    const gva = Number(e.gva);
    if (lo & PTE_P) this.guestMap.set(entryPfn(lo, Number(e.hi)), { pid: Number(e.pid), gva: gva - (gva % 4096) });
  }

  /** The page `e` is about (the previous one if `e` names none), and its trees now. */
  follow(e: SimEvent, late: boolean): Follow | undefined {
    const m = this.machine();
    const vm = m?.vms[0];
    if (!m || !vm) return undefined;
    const p = this.pageOf(vm, m, e);
    if (p !== null) this.page = p;
    if (this.page === NONE) return undefined;
    const f = { page: this.page, trees: this.trees(m, vm, this.page, late) };
    // The same page and trees as the last event's: the same object, so a message carries it once.
    const key = JSON.stringify(f);
    if (key === this.lastKey && this.last !== undefined) return this.last;
    this.lastKey = key;
    this.last = f;
    return f;
  }

  private pageOf(vm: VmState, m: Machine, e: SimEvent): FollowedPage | null {
    const o = eventObjects(e, { mmu: vm.qemu.kvm.mmu.translates === "gva" ? "shadow" : "ept" });
    let gpa = -1;
    let hva = -1;
    let gva = -1;
    let pid = -1;
    if (o.entry?.tables === "guest") {
      // A guest PTE write: the page its gva maps now.
      gva = o.gva ?? -1;
      pid = o.pid ?? -1;
      const lo = Number(e.lo);
      if (e.level === 1 && lo & PTE_P) gpa = entryPfn(lo, Number(e.hi)) * 4096;
    } else if (o.gpa !== undefined) gpa = o.gpa - (o.gpa % 4096);
    else if (o.hva !== undefined && o.mm === vm.qemu.mm.id) hva = o.hva - (o.hva % 4096);
    else if (o.pfn !== undefined && !e.kind.startsWith("host.free") && m.host.meta.mapMm[o.pfn] === vm.qemu.mm.id) {
      hva = m.host.meta.mapAddr[o.pfn]!;
    }
    if (gpa < 0 && hva >= 0) vm.qemu.kvm.memslots.hvaRangeToGfns(hva, hva + 4096, (_s, g) => (gpa = g * 4096));
    if (gpa >= 0 && hva < 0) hva = vm.qemu.gpaToHva(gpa);
    if (gpa < 0 && hva < 0 && gva < 0) return null;
    if (gva < 0 && o.gva !== undefined && o.pid !== undefined) {
      gva = o.gva - (o.gva % 4096);
      pid = o.pid;
    }
    if (gva < 0 && gpa >= 0) {
      const g = this.guestMap.get(gpa / 4096);
      if (g) ({ gva, pid } = g);
    }
    const role = gva < 0 && gpa >= 0 ? (this.guestTables.get(gpa / 4096) ?? "") : "";
    return { gpa, hva, gva, pid, role };
  }

  private trees(m: Machine, vm: VmState, p: FollowedPage, late: boolean): FollowTrees {
    const proc = p.pid >= 0 ? vm.guest.process(p.pid) : null;
    const focus = proc && p.gva >= 0 ? { pid: p.pid, process: proc.name, gva: p.gva } : null;
    const guest = focus ? guestTree(m, vm, focus) : null;
    const byGva = vm.qemu.kvm.mmu.translates === "gva";
    let second: TreeSummary | null = null;
    if (byGva) second = focus ? kvmTree(m, vm, focus, -1) : null;
    else if (p.gpa >= 0) second = kvmTree(m, vm, focus ?? { pid: -1, process: "", gva: 0 }, p.gpa / 4096);
    const host = p.hva >= 0 ? hostTree(m, vm, p.hva) : null;
    return { guest, second, host, late };
  }
}
