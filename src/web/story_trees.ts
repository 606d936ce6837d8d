// SPDX-License-Identifier: MIT
// The story's two trees, read from the real run at each chapter: the guest process's page
// tables for the address the story follows (the first page the guest faulted in), and
// KVM's EPT/NPT tables for that page's gpa (or, under shadow paging, KVM's shadow tables
// for the gva). Each tree is the path of that one address, with the number of present
// entries in every table on the way, so a chapter carries a few hundred bytes, not a tree.
//
// The snapshot is taken from inside an event emission, possibly in the middle of a fault,
// so it only reads: table words straight from PhysMem, QEMU's host tables walked here (not
// HostKernel.walk(), which keeps its result in scratch fields), never a vCPU's MMU.

import { eptLevelName, formatEptPte } from "../hw/ept_pte.js";
import type { SimEvent } from "../hw/events.js";
import { swpOffset } from "../host/pgtable.js";
import { TableIter, type TableView, physTables } from "../hw/table_iter.js";
import { entryPfn, formatX86Pte, PTE_P, PTE_PAT_HUGE, x86LevelName } from "../hw/x86_pte.js";
import { isShadowPresent } from "../kvm/spte.js";
import type { Machine, VmState } from "../sim/machine.js";
import type { StoryTrees, TreeLevel, TreeSummary } from "./protocol.js";

/** The address the story follows: a page of one guest process in the first VM. */
export interface Focus {
  pid: number;
  process: string;
  /** Page-aligned guest-virtual address. */
  gva: number;
}

/** Picks the focus: the first page a guest process of the first VM faulted in; again after that process exits. */
export class FocusTracker {
  focus: Focus | null = null;

  constructor(private readonly machine: () => Machine | null) {}

  onEvent(e: SimEvent): void {
    if (e.kind === "guest.process_exit" && this.focus !== null && Number(e.pid) === this.focus.pid) this.focus = null;
    if (e.kind !== "guest.pgfault" || this.focus !== null) return;
    const vm = this.machine()?.vms[0];
    const gva = Number(e.gva);
    const proc = vm?.guest.process(Number(e.pid));
    // Events carry no VM name: a pid of the first VM whose VMAs hold the address is this VM's fault.
    if (!proc?.alive || !Number.isFinite(gva) || proc.findVma(gva) === null) return;
    this.focus = { pid: proc.pid, process: proc.name, gva: gva - (gva % 4096) };
  }
}

const hex = (n: number) => `0x${n.toString(16)}`;

const x86Present = (lo: number) => (lo & PTE_P) !== 0;

function countPresent(t: TableView, present: (lo: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < 512; i++) if (present(t.words[t.off + 2 * i]!)) n++;
  return n;
}

/** The first frame a present leaf maps; an x86 huge leaf keeps PAT in bit 12 (EPT has none there). */
function leafFrame(lo: number, hi: number, level: number, x86: boolean): number {
  return entryPfn(x86 && level > 1 ? lo & ~PTE_PAT_HUGE : lo, hi);
}

/** The host frame behind guest frame `gfn` now, from QEMU's own tables (read-only): a frame, a swap slot, or why there is none. */
export function hostFrameOf(m: Machine, vm: VmState, gfn: number): { pfn: number } | { slot: number } | { why: string } {
  const hva = vm.qemu.gpaToHva(gfn * 4096);
  if (hva < 0) return { why: `gfn ${hex(gfn)} is not guest RAM` };
  const mm = vm.qemu.mm;
  if (mm.dead) return { why: "QEMU has exited" };
  const page = Math.floor(hva / 4096);
  const it = new TableIter(physTables(m.host.mem), x86Present);
  for (it.start(mm.pgd, 4, page, page + 1); it.valid; it.next()) {
    const { level, lo, hi } = it;
    if (!it.present) return level === 1 && (lo !== 0 || hi !== 0) ? { slot: swpOffset(lo, hi) } : { why: "not backed by the host yet" };
    if (it.leaf) return { pfn: leafFrame(lo, hi, level, true) + (page - it.base) };
  }
  return { why: "no host mapping" };
}

/** A guest page table's 1024 words wherever the host keeps them now: its frame, the swap cache, or the swap device. */
function guestTableWords(m: Machine, vm: VmState, gfn: number): { words: Uint32Array; off: number; where: string } | { why: string } {
  const mem = m.host.mem;
  const h = hostFrameOf(m, vm, gfn);
  if ("why" in h) return h;
  if ("pfn" in h) {
    if (!mem.isTable(h.pfn)) return { why: `host frame ${hex(h.pfn)} holds no table` };
    return { words: mem.words, off: mem.entryOffset(h.pfn, 0), where: `host frame ${hex(h.pfn)}` };
  }
  const swap = m.host.swap;
  const cached = swap?.cache[h.slot] ?? 0;
  if (cached > 0 && mem.isTable(cached)) {
    return {
      words: mem.words,
      off: mem.entryOffset(cached, 0),
      where: `swap slot ${h.slot}, still in the swap cache (frame ${hex(cached)})`,
    };
  }
  const saved = swap?.tables.get(h.slot);
  if (saved) return { words: saved, off: 0, where: `swap slot ${h.slot}: the host swapped this guest table out` };
  // A swap entry whose slot is already free: the snapshot fell inside do_swap_page(), between swap_free() and set_pte().
  if (swap && swap.swapMap[h.slot] === 0) return { why: `mid swap-in, the host is bringing it back from slot ${h.slot} now` };
  return { why: `swap slot ${h.slot} holds no table` };
}

/** The guest's page-table path for `focus` (tables are guest frames, read through QEMU's mapping of guest RAM). */
export function guestTree(m: Machine, vm: VmState, focus: Focus): TreeSummary {
  const proc = vm.guest.process(focus.pid);
  const tree: TreeSummary = {
    title: `Guest page tables of ${focus.process} (pid ${focus.pid})`,
    addr: focus.gva,
    addrKind: "gva",
    frameKind: "gfn",
    levels: [],
    end: "",
    leaf: -1,
  };
  if (!proc?.alive) {
    tree.end = "the process has exited";
    return tree;
  }
  let why = "";
  const read = (gfn: number) => {
    const t = guestTableWords(m, vm, gfn);
    if ("why" in t) why = t.why;
    return "why" in t ? null : t;
  };
  const page = focus.gva / 4096;
  const it = new TableIter(read, x86Present);
  for (it.start(proc.pgd, vm.guest.levels, page, page + 1); it.valid; it.next()) {
    const { level, lo, hi } = it;
    tree.levels.push({
      level,
      name: x86LevelName(level),
      table: it.table,
      index: it.index,
      present: countPresent(it.view, x86Present),
      lo,
      hi,
      bits: formatX86Pte(lo, hi, level),
      mapped: it.present,
      where: it.view.where,
    });
    if (!it.present) {
      tree.end = `no ${x86LevelName(level)}: the guest has not mapped ${hex(focus.gva)}`;
      return tree;
    }
    if (it.leaf) {
      tree.leaf = leafFrame(lo, hi, level, true) + (page - it.base);
      tree.end = `guest frame ${hex(tree.leaf)} (gpa ${hex(tree.leaf * 4096)})`;
      return tree;
    }
  }
  if (it.unreadable >= 0) tree.end = `the ${x86LevelName(it.unreadableLevel)} table (gfn ${hex(it.unreadable)}) cannot be read: ${why}`;
  return tree;
}

/**
 * KVM's path for the focus in the tables of the MMU in use, read from PhysMem: under EPT/NPT
 * the path of the page's gpa (`gfn`, -1 if the guest maps none), under shadow paging the path
 * of the gva in the root a vCPU holds for the process's page tables.
 */
export function kvmTree(m: Machine, vm: VmState, focus: Focus, gfn: number): TreeSummary {
  const mmu = vm.qemu.kvm.mmu;
  const byGva = mmu.translates === "gva";
  const ept = mmu.fmt === "ept";
  const name = (l: number) => (byGva ? `shadow ${x86LevelName(l)}` : ept ? eptLevelName(l) : `NPT ${x86LevelName(l)}`);
  const bits = (lo: number, hi: number, l: number) => {
    if (byGva) return formatX86Pte(lo, hi, l);
    const s = ept ? formatEptPte(lo, hi, l) : formatX86Pte(lo, hi, l);
    // An access-tracked EPT leaf has RWX cleared but is still KVM's (MMU-present, bit 11).
    return isShadowPresent(lo) && s.startsWith("not present") ? `access-tracked (RWX saved, cleared), lo=${hex(lo)}` : s;
  };
  const tree: TreeSummary = {
    title: byGva ? `Shadow tables of ${vm.cfg.name} for ${focus.process}` : `${ept ? "EPT" : "NPT"} tables of ${vm.cfg.name}`,
    addr: byGva ? focus.gva : gfn * 4096,
    addrKind: mmu.translates,
    frameKind: "pfn",
    levels: [],
    end: "",
    leaf: -1,
  };
  if (!byGva && gfn < 0) {
    tree.addr = -1;
    tree.end = "the guest maps no frame at this address, so there is no gpa to look up";
    return tree;
  }
  const proc = vm.guest.process(focus.pid);
  // EPT/NPT have one root per VM (the pgd is unused); a shadow root is per guest page-table tree.
  const root = proc ? mmu.rootFor(proc.pgd) : byGva ? null : mmu.rootFor(0);
  if (root === null) {
    tree.end = "no vCPU holds a shadow root for this process now (it is built when the process next runs)";
    return tree;
  }
  const page = tree.addr / 4096;
  const it = new TableIter(physTables(m.host.mem), isShadowPresent);
  for (it.start(root.table, root.level, page, page + 1); it.valid; it.next()) {
    const { level, lo, hi } = it;
    tree.levels.push({
      level,
      name: name(level),
      table: it.table,
      index: it.index,
      present: countPresent(it.view, isShadowPresent),
      lo,
      hi,
      bits: bits(lo, hi, level),
      mapped: it.present,
    });
    if (!it.present) {
      tree.end = byGva
        ? `no ${name(level)}: the next access to ${hex(focus.gva)} faults into KVM`
        : `no ${name(level)}: the next guest access to gfn ${hex(gfn)} exits to KVM`;
      return tree;
    }
    if (it.leaf) {
      tree.leaf = leafFrame(lo, hi, level, !ept) + (page - it.base);
      tree.end = `host frame ${hex(tree.leaf)}`;
      return tree;
    }
  }
  return tree;
}

/** Both trees for the focus now, or null before the guest has faulted anything in. */
export function storyTrees(m: Machine, focus: Focus | null): StoryTrees | null {
  const vm = m.vms[0];
  if (!vm || focus === null) return null;
  const guest = guestTree(m, vm, focus);
  return { mode: vm.qemu.kvm.opts.mode, guest, second: kvmTree(m, vm, focus, guest.leaf) };
}

export type LevelChange = "new" | "gone" | "changed" | "";

/** What changed at each level of `cur` since `prev` (same address only): an entry appearing, disappearing, or rewritten. */
export function treeChanges(prev: TreeSummary | null | undefined, cur: TreeSummary): LevelChange[] {
  return cur.levels.map((l, i) => {
    if (!prev || prev.addr !== cur.addr || prev.title !== cur.title) return "";
    const p = prev.levels[i];
    if (!p) return l.mapped ? "new" : "";
    if (p.mapped !== l.mapped) return l.mapped ? "new" : "gone";
    return p.lo !== l.lo || p.hi !== l.hi ? "changed" : "";
  });
}

/** Levels that were in `prev`'s path but are no longer reached in `cur` (a table freed or a parent entry cleared). */
export function lostLevels(prev: TreeSummary | null | undefined, cur: TreeSummary): TreeLevel[] {
  if (!prev || prev.addr !== cur.addr || prev.title !== cur.title) return [];
  return prev.levels.slice(cur.levels.length).filter((l) => l.mapped);
}
