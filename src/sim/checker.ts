// SPDX-License-Identifier: MIT
// The run's checker, outside the model. The machine does each access and tells the checker
// (MemoryObserver): the access after translation, and the frame-level events that change what
// a guest page should read (the guest clears or copies a frame, QEMU's disk read fills one, a
// timeline madvise discards a range, a process maps, unmaps or exits). The checker keeps what
// each page should read and finds: data errors (a read that does not return what was written),
// translations to free host frames, stale TLB or shadow entries (checks "full": each access
// compared with the guest's own tables), stale EPT/NPT/shadow leaves, and the structures'
// own invariants.

import { INV_PAGE_SIZE, LEVEL_SIZE, PAGE_SIZE } from "../hw/addr.js";
import { ACC_WRITE } from "../hw/mmu_defs.js";
import type { CoreFunctions } from "../hw/wasm_core.js";
import { PTE_P, PTE_PAT_HUGE, PTE_PS, entryPfn } from "../hw/x86_pte.js";
import type { HostKernel } from "../host/kernel.js";
import { PG_buddy } from "../host/page_flags.js";
import { filePageContent } from "../guest/filemap.js";
import { VM_SHARED } from "../guest/mm.js";
import type { GuestProcess } from "../guest/process.js";
import { framesAtLevel as framesAt } from "../kvm/tdp_mmu.js";
import type { Vcpu } from "../kvm/kvm.js";
import type { ProcState, VmState } from "./machine.js";
import { CoreLeaves, INV_LEAF_SIZE, LEAF_MASK, PAGED_ARRAY_MAX_LIMIT, PagedArray } from "../hw/paged_array.js";
import { GUEST_PHYS_LIMIT } from "./scenario_limits.js";

/**
 * A frame whose content the run cannot predict (after MADV_FREE of its backing) holds this
 * tag in GuestData.expected, with a 1 in GuestData.unknown (a written value may have the same bits).
 */
export const UNKNOWN_TAG = 0xffffffff;
/** UNKNOWN_TAG as PagedArray.getI32() reads it: the per-access check keeps values as signed 32-bit integers (never heap numbers). */
const UNKNOWN_I32 = UNKNOWN_TAG | 0;
/** Guest frame numbers the model can hold. */
const GFN_LIMIT = GUEST_PHYS_LIMIT / PAGE_SIZE;
/** Virtual page numbers of every gva a number holds exactly. */
const VPN_LIMIT = PAGED_ARRAY_MAX_LIMIT / PAGE_SIZE;

/** What the batched loop's writes store (Machine.nextWriteValueI32). */
export interface WriteValues {
  nextWriteValueI32(ps: ProcState, gva: number): number;
  /** Whether ps's writes take their values from writeSeq (CONTENT_UNIQUE), not from a content class. */
  writesUnique(ps: ProcState): boolean;
  /** The count the unique write values come from: the n-th write stores imul(n, 0x9e3779b1) | 1. */
  writeSeq: number;
}

/** A batch the core translated (wasm_mmu.ts XlateBatch): each access's gva, ACC_* kind, hpa and gpa, as views and as byte addresses in the host's core memory. */
export interface TranslatedBatch {
  readonly gva: Float64Array;
  readonly acc: Uint8Array;
  readonly hpa: Float64Array;
  readonly gpa: Float64Array;
  readonly gvaAt: number;
  readonly accAt: number;
  readonly hpaAt: number;
  readonly gpaAt: number;
}

/** Messages kept in the report (the counts go on). */
const MAX_MESSAGES = 20;

/**
 * What the machine tells the checker: one monomorphic call per access or frame event, no
 * closures. `vm` is VmState.id.
 */
export interface MemoryObserver {
  /** A new VM: returns its id. */
  addVm(): number;
  /** One guest access, translated: `frame` is the host frame it reached, `value` what it wrote or read. */
  access(ps: ProcState, vcpu: Vcpu, gva: number, frame: number, write: boolean, value: number): void;
  /** The guest cleared frame `gfn` (clear_page of a frame it reuses). */
  frameCleared(vm: number, gfn: number): void;
  /** The guest copied frame `src` into `dst` (copy_page). */
  frameCopied(vm: number, dst: number, src: number): void;
  /** QEMU's disk read filled frame `gfn` with `value` (a file page). */
  frameFilled(vm: number, gfn: number, value: number): void;
  /** A madvise by QEMU on guest RAM [gpa, gpa + size): DONTNEED zeroes it, FREE makes it unpredictable. */
  rangeDiscarded(vm: number, gpa: number, size: number, advice: string): void;
  /** A process mapped a file shared (its writes then go to the file's data). */
  sharedFileMapped(vm: number): void;
  /** `proc` unmapped [gva, gva + size): what it wrote there is forgotten. */
  unmapped(vm: number, proc: GuestProcess, gva: number, size: number): void;
  /** `proc` exited. */
  exited(vm: number, proc: GuestProcess): void;
}

/**
 * One VM's expectations: what each guest frame, virtual page and file page should read, each
 * in a PagedArray by page number (0: never written, as every written value and file page
 * content is nonzero).
 */
class GuestData {
  /**
   * gfn -> the value last written (0: zero, UNKNOWN_TAG: see unknown). Keyed by guest frame, so
   * a balloon's madvise on a gpa range or the guest clearing a frame it reuses can update it.
   * Its leaves, and `written`'s, are in the host's core memory, where the core's check reads them.
   */
  readonly expected: PagedArray;
  /** 1 where expected's UNKNOWN_TAG means "any value" (committed only where MADV_FREE ran). */
  readonly unknown = new PagedArray(GFN_LIMIT);
  /** What each process (or, without a kernel, each address space) last wrote, by virtual page (forgotten on munmap and exit). */
  private readonly writtenByGva = new Map<object, PagedArray>();
  /** The owner written() returned last, and its pages (a vCPU runs one owner for a slice). */
  private lastOwner: object | null = null;
  private lastWritten: PagedArray | null = null;
  /** What each written file page holds, by inode and page index: the value last written through a shared mapping. */
  private readonly fileData: PagedArray[] = [];
  /** Some process has a shared file mapping (its writes go to fileData, checked per write only then). */
  sharedFileMaps = false;

  constructor(private readonly leaves: CoreLeaves) {
    this.expected = new PagedArray(GFN_LIMIT, leaves);
  }

  /** Sets what frame gfn should read. */
  expect(gfn: number, value: number): void {
    this.expected.set(gfn, value);
    if (value === UNKNOWN_TAG) this.unknown.set(gfn, 0);
  }

  /** expect() of a value as a signed 32-bit integer. */
  expectI32(gfn: number, value: number): void {
    this.expected.setI32(gfn, value);
    if (value === UNKNOWN_I32) this.unknown.setI32(gfn, 0);
  }

  /** The virtual pages `owner` wrote. */
  written(owner: object): PagedArray {
    if (owner === this.lastOwner && this.lastWritten !== null) return this.lastWritten;
    let w = this.writtenByGva.get(owner);
    if (w === undefined) {
      w = new PagedArray(VPN_LIMIT, this.leaves);
      this.writtenByGva.set(owner, w);
    }
    this.lastOwner = owner;
    this.lastWritten = w;
    return w;
  }

  /** `owner`'s writes to virtual pages [first, last] are forgotten. */
  forget(owner: object, first: number, last: number): void {
    this.writtenByGva.get(owner)?.clearRange(first, last);
  }

  /** `owner` is gone, with everything it wrote. */
  dropOwner(owner: object): void {
    this.writtenByGva.get(owner)?.dispose();
    this.writtenByGva.delete(owner);
    if (owner === this.lastOwner) {
      this.lastOwner = null;
      this.lastWritten = null;
    }
  }

  /** What `proc` should read at `gva` when it never wrote there itself: file data in a file mapping, zero elsewhere. */
  unwrittenValue(proc: GuestProcess, gva: number): number {
    const v = proc.findVma(gva);
    if (v === null || v.file === undefined) return 0;
    const index = (v.pgoff ?? 0) + Math.floor((gva - v.start) / PAGE_SIZE);
    const written = this.fileData[v.file.ino]?.get(index) ?? 0;
    return written !== 0 ? written : filePageContent(v.file.ino, index);
  }

  /** A write by `proc` at `gva` that went to a shared file mapping's page-cache page: recorded as the file's data; false if not one. */
  sharedFileWrite(proc: GuestProcess, gva: number, value: number): boolean {
    if (!this.sharedFileMaps) return false;
    const v = proc.findVma(gva);
    if (v === null || v.file === undefined || (v.flags & VM_SHARED) === 0) return false;
    const ino = v.file.ino;
    let data = this.fileData[ino];
    if (data === undefined) this.fileData[ino] = data = new PagedArray(VPN_LIMIT);
    data.set((v.pgoff ?? 0) + Math.floor((gva - v.start) / PAGE_SIZE), value);
    return true;
  }
}

export class Checker implements MemoryObserver {
  dataErrors = 0;
  invariantViolations = 0;
  readonly violations: string[] = [];
  /**
   * Compare each access's translation (the TLB's, or under shadow paging the shadow entry's)
   * with the guest kernel's own tables: a stale entry is a violation even when the data happens
   * to match. Off by default (on with run --check=full and in memvirt check): it walks the guest
   * tables per access. Guests without a kernel may use a stale entry until their INVLPG: not checked.
   */
  checkShadowWalks = false;
  /** Guest reads made, and a digest of the values they returned (the same under every MMU mode). */
  valuesRead = 0;
  /** The digest as a signed 32-bit integer (the same bits). */
  private digestI32 = 0;
  get readDigest(): number {
    return this.digestI32 >>> 0;
  }
  private readonly data: GuestData[] = [];
  /** The per-page arrays' leaves, in the host's core memory. */
  private readonly leaves: CoreLeaves;

  constructor(
    private readonly host: HostKernel,
    /** The machine's VMs, by VmState.id. */
    private readonly vms: readonly VmState[],
  ) {
    this.leaves = new CoreLeaves(host.mem);
  }

  /** A new VM: returns its id. */
  addVm(): number {
    this.data.push(new GuestData(this.leaves));
    return this.data.length - 1;
  }

  violation(msg: string): void {
    this.invariantViolations++;
    if (this.violations.length < MAX_MESSAGES) this.violations.push(msg);
  }

  // ---- MemoryObserver

  access(ps: ProcState, vcpu: Vcpu, gva: number, frame: number, write: boolean, value: number): void {
    if ((this.host.meta.flags[frame]! & PG_buddy) !== 0) this.freeFrameReached(ps, gva, frame);
    const gfn = vcpu.archMmu.accessedGfn(gva);
    if (gfn < 0) this.noShadowEntry(ps, gva);
    else if (this.checkShadowWalks && ps.vm.kernel !== null) this.checkWalk(ps, vcpu, gva, gfn);
    this.dataCheck(ps, gva, gfn, write, value | 0);
  }

  /**
   * access() of accesses [i, k) of an EPT/NPT batch the core translated (gva, ACC_* kind, hpa and
   * gpa by index; without checkShadowWalks, which keeps the batched loop off), in one loop: each write stores `values.nextWriteValueI32()` in its frame's
   * content tag first, as Machine.runAccess() does. Same checks, counts and messages in the same
   * order as access() per access. The per-page arrays, content tags and page flags are views
   * of the host's core memory: taken again after every call that may grow it.
   */
  accessTdpRun(ps: ProcState, values: WriteValues, b: TranslatedBatch, i: number, k: number): void {
    const d = this.data[ps.vm.id]!;
    const written = d.written(ps.process ?? ps.space!);
    // A shared file mapping's writes go to the file's data: the per-access path checks each.
    const plainWrites = ps.process === null || !d.sharedFileMaps;
    const expected = d.expected;
    const mem = this.host.mem;
    let content = mem.contentI32;
    let flags = this.host.meta.flags;
    const gvas = b.gva;
    const accs = b.acc;
    const hpas = b.hpa;
    const gpas = b.gpa;
    let digest = this.digestI32;
    let reads = 0;
    // The leaves of `written` and `expected` the last access used (a batch stays in a few), by leaf number; null: none committed.
    let wNo = -1;
    let wLeaf: Int32Array | null = null;
    let eNo = -1;
    let eLeaf: Int32Array | null = null;
    for (let j = i; j < k; j++) {
      const frame = Math.floor(hpas[j]! * INV_PAGE_SIZE);
      const gva = gvas[j]!;
      const gfn = Math.floor(gpas[j]! * INV_PAGE_SIZE);
      const vpn = Math.floor(gva * INV_PAGE_SIZE);
      const wn = Math.floor(vpn * INV_LEAF_SIZE);
      const en = Math.floor(gfn * INV_LEAF_SIZE);
      if (wn !== wNo) {
        wNo = wn;
        wLeaf = written.leaf(wn);
      }
      if (en !== eNo) {
        eNo = en;
        eLeaf = expected.leaf(en);
      }
      if ((flags[frame]! & PG_buddy) !== 0) this.freeFrameReached(ps, gva, frame);
      if ((accs[j]! & ACC_WRITE) === 0) {
        const value = content[frame]!;
        // dataCheck()'s outcome when the page was written and both views agree, inline.
        if (wLeaf !== null && eLeaf !== null) {
          const wrote = wLeaf[vpn & LEAF_MASK]!;
          if (wrote !== 0 && value === wrote && value === eLeaf[gfn & LEAF_MASK]!) {
            reads++;
            digest = Math.imul(digest, 0x01000193) ^ value;
            continue;
          }
        }
        this.valuesRead += reads;
        reads = 0;
        this.digestI32 = digest;
        this.dataCheck(ps, gva, gfn, false, value);
        digest = this.digestI32;
      } else {
        const value = values.nextWriteValueI32(ps, gva);
        content[frame] = value;
        if (!plainWrites) this.dataCheck(ps, gva, gfn, true, value);
        else if (eLeaf !== null && wLeaf !== null && value !== UNKNOWN_I32) {
          eLeaf[gfn & LEAF_MASK] = value;
          wLeaf[vpn & LEAF_MASK] = value;
          continue;
        } else {
          d.expectI32(gfn, value);
          written.setI32(vpn, value);
        }
      }
      // A slow path may have committed a leaf and so grown the core memory: every view again.
      wNo = eNo = -1;
      content = mem.contentI32;
      flags = this.host.meta.flags;
    }
    this.valuesRead += reads;
    this.digestI32 = digest;
  }

  /**
   * accessTdpRun() with the wasm core settling the common accesses over the same arrays in its
   * memory (asm/data_check.ts); each access it stops at runs in accessTdpRun(), then the core
   * goes on after it. `st` is 16 bytes of the host's core memory for the core's running state.
   */
  accessTdpRunCore(ps: ProcState, values: WriteValues, b: TranslatedBatch, core: CoreFunctions, st: number, i: number, k: number): void {
    const d = this.data[ps.vm.id]!;
    const written = d.written(ps.process ?? ps.space!);
    if (written.cacheAt === 0 || d.expected.cacheAt === 0 || this.host.meta.flagsAt < 0) {
      this.accessTdpRun(ps, values, b, i, k);
      return;
    }
    const writes = (ps.process === null || !d.sharedFileMaps) && values.writesUnique(ps) ? 1 : 0;
    const cm = this.host.mem.wasm;
    const s = st >>> 2;
    for (let j = i; j < k; j++) {
      let i32 = cm.i32;
      i32[s] = this.digestI32;
      i32[s + 2] = values.writeSeq | 0;
      const settled = core.dataCheckRun(
        st,
        b.gvaAt + j * 8,
        b.accAt + j,
        b.hpaAt + j * 8,
        b.gpaAt + j * 8,
        k - j,
        this.host.mem.contentAt,
        this.host.meta.flagsAt,
        PG_buddy,
        written.cacheAt,
        d.expected.cacheAt,
        writes,
      );
      i32 = cm.i32;
      this.digestI32 = i32[s]!;
      this.valuesRead += i32[s + 1]!;
      values.writeSeq += i32[s + 3]!;
      j += settled;
      if (j === k) return;
      this.accessTdpRun(ps, values, b, j, j + 1);
    }
  }

  /**
   * What the access wrote is recorded; what it read is compared with what it should read.
   * Values are signed 32-bit integers here (the same bits as the unsigned ones), so none is a heap number.
   */
  private dataCheck(ps: ProcState, gva: number, gfn: number, write: boolean, value: number): void {
    const d = this.data[ps.vm.id]!;
    const page = Math.floor(gva / PAGE_SIZE);
    const written = d.written(ps.process ?? ps.space!);
    if (write) {
      if (gfn >= 0) d.expectI32(gfn, value);
      if (ps.process === null || !d.sharedFileWrite(ps.process, gva, value >>> 0)) written.setI32(page, value);
      return;
    }
    this.valuesRead++;
    this.digestI32 = Math.imul(this.digestI32, 0x01000193) ^ value;
    // Two views of what the guest should read: what its frame last held (zero after the
    // guest cleared it or the host discarded it), and what its process last wrote at this
    // address (which no host action may take away from a page still in use).
    let wrote = written.getI32(page);
    if (wrote === 0 && ps.process !== null) wrote = d.unwrittenValue(ps.process, gva) | 0;
    if (gfn < 0) {
      if (value !== wrote) this.dataError(ps, gva, value >>> 0, wrote >>> 0, wrote >>> 0);
      return;
    }
    const want = d.expected.getI32(gfn);
    if (want === UNKNOWN_I32 && d.unknown.getI32(gfn) !== 0) return;
    if (value !== want || value !== wrote) this.dataError(ps, gva, value >>> 0, want >>> 0, wrote >>> 0);
  }

  frameCleared(vm: number, gfn: number): void {
    this.data[vm]!.expected.set(gfn, 0);
  }

  frameCopied(vm: number, dst: number, src: number): void {
    const d = this.data[vm]!;
    const want = d.expected.get(src);
    d.expected.set(dst, want);
    if (want === UNKNOWN_TAG) d.unknown.set(dst, d.unknown.get(src));
  }

  frameFilled(vm: number, gfn: number, value: number): void {
    this.data[vm]!.expect(gfn, value);
  }

  rangeDiscarded(vm: number, gpa: number, size: number, advice: string): void {
    if (advice !== "DONTNEED" && advice !== "FREE") return;
    const d = this.data[vm]!;
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + size - 1) / PAGE_SIZE);
    if (advice === "DONTNEED") {
      d.expected.clearRange(first, last);
      d.unknown.clearRange(first, last);
      return;
    }
    // A frame nobody wrote reads zero whether or not the host keeps it.
    d.expected.forEachNonZero(first, last, (gfn) => {
      d.expected.set(gfn, UNKNOWN_TAG);
      d.unknown.set(gfn, 1);
    });
  }

  sharedFileMapped(vm: number): void {
    this.data[vm]!.sharedFileMaps = true;
  }

  unmapped(vm: number, proc: GuestProcess, gva: number, size: number): void {
    this.data[vm]!.forget(proc, Math.floor(gva / PAGE_SIZE), Math.floor((gva + size - 1) / PAGE_SIZE));
  }

  exited(vm: number, proc: GuestProcess): void {
    this.data[vm]!.dropOwner(proc);
  }

  // ---- Per-access checks

  private freeFrameReached(ps: ProcState, gva: number, frame: number): void {
    this.violation(
      `${ps.vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} reached host frame 0x${frame.toString(16)}, which is free: a stale translation`,
    );
  }

  private noShadowEntry(ps: ProcState, gva: number): void {
    this.violation(
      `${ps.vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} was translated, but no shadow entry maps it: a stale TLB entry`,
    );
  }

  /** The access's gfn against the one the guest kernel's own tables map (checks "full"). */
  private checkWalk(ps: ProcState, vcpu: Vcpu, gva: number, gfn: number): void {
    const want = this.guestGfnOf(ps.vm, vcpu.archMmu.guestRootGfn(), gva);
    if (want !== -2 && want !== gfn)
      this.violation(
        `${ps.vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} went to gfn 0x${gfn.toString(16)}, but the guest's tables map ${want < 0 ? "nothing" : `gfn 0x${want.toString(16)}`} there: a stale TLB entry (or, under shadow paging, shadow entry)`,
      );
  }

  private dataError(ps: ProcState, gva: number, got: number, want: number, wrote: number): void {
    this.dataErrors++;
    if (this.violations.length >= MAX_MESSAGES) return;
    const lost =
      got === want && got !== wrote
        ? ` (the process wrote 0x${wrote.toString(16)} there: the host discarded a page the guest was using)`
        : "";
    this.violations.push(
      `${ps.vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} read 0x${got.toString(16)}, expected 0x${(got !== want ? want : wrote).toString(16)}${lost}`,
    );
  }

  /** The gfn the guest's tables rooted at `rootGfn` map at gva, read without side effects: -1 if none, -2 if a table is not in host RAM. */
  private guestGfnOf(vm: VmState, rootGfn: number, gva: number): number {
    const mem = this.host.mem;
    let table = rootGfn;
    for (let level: number = vm.cfg.guest.levels; level >= 1; level--) {
      const p = this.host.probe(vm.qemu.mm, vm.qemu.gpaToHva(table * PAGE_SIZE));
      if (p.state !== "present" || !mem.isTable(p.pfn)) return -2;
      const idx = Math.floor(gva / LEVEL_SIZE[level]!) % 512;
      const lo = mem.readLo(p.pfn, idx);
      const hi = mem.readHi(p.pfn, idx);
      if ((lo & PTE_P) === 0) return -1;
      if (level === 1 || (level <= 3 && (lo & PTE_PS) !== 0)) {
        const size = LEVEL_SIZE[level]!;
        return entryPfn(level > 1 ? lo & ~PTE_PAT_HUGE : lo, hi) + Math.floor((gva % size) / PAGE_SIZE);
      }
      table = entryPfn(lo, hi);
    }
    return -1;
  }

  // ---- Whole-machine checks

  /**
   * The structures' own invariants: the host mm's (rmap, LRU, swap counts, accounting, free
   * lists: host/invariants.ts) and each VM's MMU's (the TDP MMU's leaf counts; the shadow MMU's
   * rmaps, parent links, counts, write tracking: kvm/shadow_check.ts). O(memory): the engine runs it at the end of a run, and
   * with checks "full" every CHECK_EVERY slices. Returns the number of violations found.
   */
  checkStructures(): number {
    let bad = 0;
    try {
      this.host.checkInvariants();
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("host mm invariant")) throw e;
      this.violation(e.message);
      bad++;
    }
    for (const vm of this.vms) {
      for (const msg of vm.qemu.kvm.mmu.checkInvariants()) {
        this.violation(`${vm.cfg.name}: ${vm.cfg.mmu} MMU invariant: ${msg}`);
        bad++;
      }
    }
    return bad;
  }

  /**
   * The invariant of the mmu_notifier protocol: every EPT/NPT or shadow leaf maps the frame
   * that QEMU's page tables map at the leaf's hva. Returns the number of stale leaves found.
   */
  checkStaleMappings(): number {
    let stale = 0;
    for (const vm of this.vms) {
      const kvm = vm.qemu.kvm;
      kvm.forEachLeaf((gfn, level, pfn) => {
        const hva = vm.qemu.gpaToHva(gfn * PAGE_SIZE);
        const p = this.host.probe(vm.qemu.mm, hva);
        const hostPfn = p.state === "present" ? p.pfn - (p.pfn % framesAt(level)) : -1;
        if (hostPfn !== pfn) {
          stale++;
          this.violation(
            `${vm.cfg.name}: ${kvm.opts.mode.toUpperCase()} leaf (level ${level}) maps gfn 0x${gfn.toString(16)} to pfn 0x${pfn.toString(16)}, but QEMU's hva 0x${hva.toString(16)} maps ${hostPfn < 0 ? "nothing" : `pfn 0x${hostPfn.toString(16)}`}: a stale mapping`,
          );
        }
      });
    }
    return stale;
  }
}
