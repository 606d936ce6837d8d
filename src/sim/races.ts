// SPDX-License-Identifier: MIT
// Race points: where the scheduler runs another agent in the middle of a KVM fault (kvm.racePoint)
// or of a host invalidation (the mmu_notifier chain's racePoint), so the invalidation protocol
// is exercised by interleavings a sequential run never makes.

import type { Vcpu } from "../kvm/kvm.js";
import type { Prng } from "../workload/prng.js";
import type { Engine } from "./engine.js";
import type { Machine, VmState } from "./machine.js";

/**
 * Times in a row one access's fault is raced before the scheduler lets it through: a fair
 * scheduler lets a retried fault finish (only an adversary could page the page out forever).
 */
export const MAX_RACES_PER_ACCESS = 3;

export class Races {
  /** The last raced fault (vCPU, gfn, access) and how often in a row it was raced. */
  private racedVcpu: Vcpu | null = null;
  private racedGfn = -1;
  private racedAt = -1;
  private racedTimes = 0;
  /** Inside a fault run at an invalidation's race point (it races nothing itself). */
  private racing = false;

  constructor(
    private readonly machine: Machine,
    /** The scheduler's generator (races draw from it between scheduling decisions). */
    private readonly rng: Prng,
    /** Probability that something runs at each race point. */
    private readonly pressure: number,
  ) {}

  /** Whether a race may run at this fault now (then it counts as one). */
  mayRace(vcpu: Vcpu, gfn: number): boolean {
    if (this.racing) return false;
    const at = this.machine.bus.now;
    if (vcpu === this.racedVcpu && gfn === this.racedGfn && at === this.racedAt) {
      if (this.racedTimes >= MAX_RACES_PER_ACCESS) return false;
      this.racedTimes++;
    } else {
      this.racedVcpu = vcpu;
      this.racedGfn = gfn;
      this.racedAt = at;
      this.racedTimes = 1;
    }
    return true;
  }

  /** Host race point inside an invalidation of `range` on `vm`'s mm: one fault attempt by a vCPU not handling an exit. */
  invalidationRace(vm: VmState, range: { start: number; end: number }): void {
    const kvm = vm.qemu.kvm;
    if (this.racing) return;
    if (this.rng.nextFloat() >= this.pressure) return;
    let lo = -1;
    let hi = -1;
    kvm.memslots.hvaRangeToGfns(range.start, range.end, (_slot, gs, ge) => {
      if (lo < 0) lo = gs;
      hi = ge;
    });
    if (lo < 0) return;
    const draw = this.rng.nextInt(1 << 30);
    const gfn = draw % 2 === 1 ? lo + ((draw >> 1) % (hi - lo)) : draw % 4 === 0 ? lo - 1 : hi;
    // Only a page the host maps now: the fault must not allocate in the middle of the host's work.
    if (gfn < 0 || kvm.memslots.find(gfn) === null) return;
    const p2 = this.machine.host.probe(vm.qemu.mm, vm.qemu.gpaToHva(gfn * 4096));
    if (p2.state !== "present") return;
    // Another vCPU than the one whose exit (if any) led to this invalidation.
    const busy = kvm.currentVcpu === null ? 0 : 1;
    if (kvm.vcpus.length === busy) return;
    let vcpu = kvm.vcpus[draw % (kvm.vcpus.length - busy)]!;
    if (vcpu === kvm.currentVcpu) vcpu = kvm.vcpus[kvm.vcpus.length - 1]!;
    // A race: nothing it causes races again.
    this.racing = true;
    try {
      vcpu.faultOnce(gfn * 4096, false);
    } finally {
      this.racing = false;
    }
  }
}

/** The default race-point policy: now and then, kswapd (if awake) reclaims while a fault is in flight. */
export function defaultRacePoint(engine: Engine, vcpu: Vcpu, point: string, gfn: number): void {
  const p = engine.opts.racePressure ?? 1 / 8;
  if (engine.opts.raceAgent === "pageout") {
    if (point !== "after-faultin" || engine.rng.nextFloat() >= p || !engine.mayRace(vcpu, gfn)) return;
    const vm = engine.machine.vms.find((v) => v.qemu.kvm === vcpu.kvm)!;
    vm.qemu.madvise(gfn * 4096, 4096, "PAGEOUT");
    return;
  }
  if (engine.machine.host.kswapdRunning() && engine.rng.nextFloat() < p && engine.mayRace(vcpu, gfn)) engine.machine.host.kswapdStep();
}
