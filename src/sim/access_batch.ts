// SPDX-License-Identifier: MIT
// The batched access loop: a vCPU slice's accesses (drawn by the stream into the vCPU's batch in
// the host's core memory, or copied there from the engine's batch) handed to the wasm core in one
// call per run of accesses that need no exit, for the vCPU and for its
// bare-metal twin, the data check then running over the hpas and gpas the core wrote. JS is
// entered for the access that stopped a batch (an EPT/NPT exit, a guest #PF), which finishes
// exactly as Machine.runAccess() would, and the batch goes on after it. Same results, counters,
// events and clock as one runAccess() per access: between two exits an access touches only
// its vCPU's MMU (TLB, caches, A/D bits), the twin's and the checker, which are independent.
// Off (one runAccess() per access) under shadow paging, with the JS Mmu (the reference), with
// a walk log attached or with checks "full" (the checker then walks the guest tables per access).

import { ACC_USER, XLATE_OK } from "../hw/mmu.js";
import type { NativeCpu } from "../hw/native_cpu.js";
import { WasmMmu, XlateBatch } from "../hw/wasm_mmu.js";
import { TdpVcpuMmu } from "../kvm/vcpu_mmu.js";
import { AccessBatch, OP_READ, OP_WRITE } from "../workload/stream.js";
import { ACC_OF_OP, type Machine, type ProcState, type VmState, accessLoop } from "./machine.js";

/** One VM's batches in wasm memory: the vCPUs' (in the host's memory) and the native twin's. */
interface VmBatches {
  readonly vm: XlateBatch;
  readonly native: XlateBatch | null;
}

export class BatchedAccesses {
  /** Per VM: its batches, or null when its vCPUs do not run on the wasm core under EPT/NPT. */
  private readonly perVm = new Map<VmState, VmBatches | null>();

  constructor(
    private readonly machine: Machine,
    /** Accesses per call at most (the engine's slice). */
    private readonly capacity: number,
  ) {}

  /**
   * A batch over `ps`'s vCPU's own arrays, up to `want` accesses, the ops being its access kinds,
   * for a stream of reads and writes to fill where the core reads them (runInPlace() then runs
   * it); null if this VM or this moment needs its accesses one by one.
   */
  vcpuBatch(ps: ProcState, want: number): AccessBatch | null {
    const b = this.usable(ps);
    if (b === null || want > this.capacity) return null;
    const user = ps.user ? ACC_USER : 0;
    const kinds = user | ACC_OF_OP[OP_READ]! | ((user | ACC_OF_OP[OP_WRITE]!) << 8);
    return new AccessBatch(want, { addrs: b.vm.gva, ops: b.vm.acc, kinds, core: b.vm.coreMemory });
  }

  /**
   * Runs accesses [0, n) of `ps` (gva in `addrs`, OP_* in `ops`), the clock at `clock0` for the
   * first, as n calls of Machine.runAccess() would; false (nothing done) if this VM or this
   * moment needs them one by one.
   */
  run(ps: ProcState, addrs: Float64Array, ops: Uint8Array, n: number, clock0: number): boolean {
    const b = this.usable(ps);
    if (b === null || n > this.capacity) return false;
    const gvas = b.vm.gva;
    const accs = b.vm.acc;
    const user = ps.user ? ACC_USER : 0;
    gvas.set(addrs.subarray(0, n));
    for (let i = 0; i < n; i++) accs[i] = user | ACC_OF_OP[ops[i]!]!;
    this.runInPlace(ps, n, clock0);
    return true;
  }

  /** Runs accesses [0, n) of `ps` from its vCPU's batch (gva and access kind there already), as run() does. */
  runInPlace(ps: ProcState, n: number, clock0: number): void {
    const vm = ps.vm;
    const vcpu = vm.qemu.kvm.vcpus[ps.cpu]!;
    const arch = vcpu.archMmu as TdpVcpuMmu;
    const hw = vcpu.mmu as WasmMmu;
    const b = this.batches(vm)!;
    const twin = vm.native !== null && ps.nativeProcess !== null ? vm.native.cpus[ps.cpu]! : null;
    if (twin !== null) {
      b.native!.gva.set(b.vm.gva.subarray(0, n));
      b.native!.acc.set(b.vm.acc.subarray(0, n));
    }
    const m = this.machine;
    const bus = m.bus;
    for (let i = 0; i < n; ) {
      bus.now = clock0 + i;
      // vcpu_enter_guest() before the first access of the run (requests, kicks); the others enter with nothing pending.
      arch.enter();
      const k = hw.accessBatch(b.vm, i, n);
      // simplified: the twin runs accesses [i, k) after the vCPU ran them all (the machines share no state; a twin failure in that run stops it a few accesses later on the vCPU).
      if (twin !== null) this.runTwin(ps, twin, b.native!, i, k);
      this.check(ps, hw, b.vm, i, k);
      if (k === n) break;
      bus.now = clock0 + k;
      // The views again: an exit may have grown the wasm memory.
      const gva = b.vm.gva[k]!;
      const acc = b.vm.acc[k]!;
      m.completeAccess(ps, vcpu, gva, acc, arch.accessFrom(gva, acc, hw.batchResult));
      i = k + 1;
    }
    bus.now = clock0 + n - 1;
  }

  /** `ps`'s VM's batches if its accesses can run batched now: a TDP vCPU on the wasm core, no walk log, no per-access shadow check, a twin (if any) on the core too. */
  private usable(ps: ProcState): VmBatches | null {
    const vm = ps.vm;
    const vcpu = vm.qemu.kvm.vcpus[ps.cpu]!;
    const hw = vcpu.mmu;
    if (!(vcpu.archMmu instanceof TdpVcpuMmu) || !(hw instanceof WasmMmu) || hw.log !== null || this.machine.checker.checkShadowWalks)
      return null;
    const b = this.batches(vm);
    if (b === null) return null;
    const twin = vm.native !== null && ps.nativeProcess !== null ? vm.native.cpus[ps.cpu]! : null;
    if (twin !== null && (b.native === null || twin.mmu.log !== null)) return null;
    return b;
  }

  private batches(vm: VmState): VmBatches | null {
    let b = this.perVm.get(vm);
    if (b === undefined) {
      const hw = vm.qemu.kvm.vcpus[0]?.mmu;
      const twinMmu = vm.native?.cpus[0]?.mmu ?? null;
      b =
        hw instanceof WasmMmu
          ? {
              vm: new XlateBatch(hw.mem, this.capacity),
              native: twinMmu instanceof WasmMmu ? new XlateBatch(twinMmu.mem, this.capacity) : null,
            }
          : null;
      this.perVm.set(vm, b);
    }
    return b;
  }

  /** The twin's accesses [i, k): in batches, each guest #PF handled by its kernel as in Machine.runAccess(). */
  private runTwin(ps: ProcState, cpu: NativeCpu, b: XlateBatch, i: number, k: number): void {
    const hw = cpu.mmu as WasmMmu;
    const guest = ps.vm.native!.guest;
    for (let j = i; j < k; ) {
      const s = hw.accessBatch(b, j, k);
      if (s === k) return;
      const gva = b.gva[s]!;
      const acc = b.acc[s]!;
      const r = cpu.accessFrom(gva, hw.batchResult);
      if (r !== XLATE_OK) accessLoop(cpu, guest, ps.nativeProcess, ps, gva, acc, true, r);
      j = s + 1;
    }
  }

  /** The data check of accesses [i, k), which the core translated (hpa, gpa in `b`): in the core, JS for what it hands back. */
  private check(ps: ProcState, hw: WasmMmu, b: XlateBatch, i: number, k: number): void {
    const st = this.checkState(hw);
    this.machine.checker.accessTdpRunCore(ps, this.machine, b, hw.mem.wasm.core().fn, st, i, k);
    ps.accesses += k - i;
  }

  /** 16 bytes of the host's core memory for the core's data check (digest, reads, write count). */
  private checkState(hw: WasmMmu): number {
    if (this.checkAt === 0) this.checkAt = hw.mem.wasm.alloc(16);
    return this.checkAt;
  }
  private checkAt = 0;
}
