// SPDX-License-Identifier: MIT
// The engine: a seeded scheduler that interleaves the agents of a run (each vCPU running
// its guest processes' steps, kswapd while it is awake, timeline actions at their time), a
// clock, samples over time, and the report at the end.
//
// A vCPU's slice is up to SLICE accesses of its current process; processes sharing a vCPU
// take turns every TIMESLICE accesses (a guest context switch: a CR3 load). kswapd's slice
// is one reclaim batch. Which runnable agent goes next is drawn from the scenario's seed.

import type { MmuCore } from "../hw/mmu_core.js";
import { type Vcpu, VmFailure } from "../kvm/kvm.js";
import { Prng } from "../workload/prng.js";
import { AccessBatch, OP_KINDS } from "../workload/stream.js";
import { type ByteSource, TraceError } from "../workload/trace.js";
import { BatchedAccesses } from "./access_batch.js";
import { type CostResult, applyCost, costTable } from "./cost.js";
import { costCounts } from "./cost_counts.js";
import { Machine, type ProcState, type VmState } from "./machine.js";
import { PhaseBarrier } from "./phase_barrier.js";
import { type CounterSnapshot, type PhaseReport, phaseReport, takeSnapshot } from "./phases.js";
import { Races, defaultRacePoint } from "./races.js";
import { START_PHASE } from "./scenario_limits.js";
import type { Scenario, TimelineAction, TimelineEvent } from "./scenario_schema.js";
import { type Report, buildReport, type SeriesPoint } from "./report.js";
import { TimeSeries } from "./series.js";
import { applyTimelineAction } from "./timeline.js";
import { StepRunner, plannedAccesses } from "./steps.js";

export { MAX_RACES_PER_ACCESS } from "./races.js";
export { plannedAccesses } from "./steps.js";

/** Accesses per vCPU slice (between two scheduling decisions). */
export const SLICE = 256;
/** Accesses a guest process runs before the next process on its vCPU gets a turn. */
export const TIMESLICE = 4096;
/** Scheduling decisions between two yields of Engine.runAsync (at most this many slices of SLICE accesses). */
export const YIELD_EVERY = 64;

export interface RunOptions {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Sample the time series every this many accesses (0: no series). */
  sampleEvery?: number;
  /** Called at KVM's fault race points; the default sometimes runs a kswapd batch there. */
  onRacePoint?: (engine: Engine, vcpu: Vcpu, point: string, gfn: number) => void;
  /** Called with (accesses done, accesses planned) now and then. */
  onProgress?: (done: number, total: number) => void;
  /** Check the EPT/NPT leaves against QEMU's page tables after every timeline action and at the end (default true). */
  checkMappings?: boolean;
  /**
   * What the checker runs besides the data check. "basic" (the default): at the end of the run,
   * stale EPT/NPT/shadow leaves, the host mm's and the shadow MMU's invariants. "full" adds the
   * costly ones: each access's translation (TLB or shadow entry) compared with the guest kernel's
   * own tables (Checker.checkShadowWalks) and the invariants every CHECK_EVERY scheduler slices.
   */
  checks?: "basic" | "full";
  /** Opens a trace file named by a `trace` step (its path already resolved against the scenario file). */
  openFile?: (path: string) => ByteSource;
  /**
   * Seeds the scheduler alone (which agent runs next, what runs at a race point), so other
   * interleavings of the same workload can be explored; defaults to the scenario's seed.
   */
  scheduleSeed?: number;
  /** Probability that something runs at each fault race point (default 1/8). */
  racePressure?: number;
  /**
   * What runs at a race point: "kswapd" (a reclaim batch, if kswapd is awake; the default) or
   * "pageout" (the page being faulted in is reclaimed right after KVM got it: madvise(MADV_PAGEOUT)
   * on it, the adversarial schedule for the invalidation protocol).
   */
  raceAgent?: "kswapd" | "pageout";
  /** Debug: KVM skips the invalidation re-check before installing an spte (Kvm.debugSkipSeqCheck). */
  debugSkipSeqCheck?: boolean;
  /**
   * Run a vCPU's EPT/NPT fault inside host invalidations too: between invalidate_range_start and
   * the host's PTE change, with probability racePressure, one fault attempt over a gfn of the
   * range (odd draws) or a neighbour just outside it (even draws). TDP VMs only.
   */
  invalidationRaces?: boolean;
  /** The MMU implementation of the machine the engine builds: the wasm core (default) or the JS reference, same results. */
  mmuCore?: MmuCore;
}

/** Scheduler slices between two structure checks with checks "full". */
export const CHECK_EVERY = 64;

export class RunError extends Error {}

type TimedEvent = TimelineEvent & { at: { clock: "cycles" | "accesses" } };

export class Engine {
  readonly machine: Machine;
  readonly rng: Prng;
  /** Guest accesses done so far (the clock that timeline `accesses:` counts). */
  accesses = 0;
  private readonly timeSeries = new TimeSeries();
  readonly series: SeriesPoint[] = this.timeSeries.points;
  /** Timeline actions at a time (those at a phase run at its boundary instead). */
  private readonly timeline: TimedEvent[];
  private readonly batch = new AccessBatch(SLICE);
  /** Whether the last fill() wrote the vCPU's own batch (BatchedAccesses.vcpuBatch). */
  private inPlace = false;
  /** The slice's accesses run in batches through the wasm core (sim/access_batch.ts) where the VM allows. */
  private readonly batched: BatchedAccesses;
  /** The cost table in force: defaults with the scenario's overrides. */
  readonly costs: Record<string, number>;
  private readonly plannedTotal: number;
  /** Whether some VM has a virtio-balloon (whose deferred work the scheduler runs between slices). */
  private readonly balloons: boolean;
  private readonly steps: StepRunner;
  private readonly races: Races;
  private readonly phases: PhaseBarrier;
  /** Boundaries so far, in the order they happened; the first is the start of the run (every counter zero). */
  private readonly boundaries: { name: string; at: CounterSnapshot | null }[] = [];

  constructor(
    readonly scenario: Scenario,
    readonly opts: RunOptions = {},
    machine?: Machine,
  ) {
    this.costs = costTable(scenario.cost);
    this.machine = machine ?? new Machine(scenario, undefined, opts.mmuCore ? { mmuCore: opts.mmuCore } : {});
    this.batched = new BatchedAccesses(this.machine, SLICE);
    this.rng = Prng.derive(opts.scheduleSeed ?? opts.seed ?? scenario.seed, "scheduler");
    this.timeline = scenario.timeline.filter((ev): ev is TimedEvent => ev.at.clock !== "phase").sort((a, b) => a.at.value - b.at.value);
    this.phases = new PhaseBarrier(this.machine.vms, scenario);
    if (this.phases.any) this.boundaries.push({ name: START_PHASE, at: null });
    this.steps = new StepRunner(this.machine, opts.seed ?? scenario.seed, this, opts.openFile);
    this.races = new Races(this.machine, this.rng, opts.racePressure ?? 1 / 8);
    this.plannedTotal = plannedAccesses(scenario);
    this.balloons = this.machine.vms.some((vm) => vm.balloon !== null);
    for (const vm of this.machine.vms) {
      vm.qemu.kvm.racePoint = (vcpu, point, gfn) => (this.opts.onRacePoint ?? defaultRacePoint)(this, vcpu, point, gfn);
      vm.qemu.kvm.debugSkipSeqCheck = opts.debugSkipSeqCheck === true;
      if (opts.invalidationRaces && vm.qemu.kvm.opts.mode !== "shadow")
        vm.qemu.mm.notifiers.racePoint = (range) => this.races.invalidationRace(vm, range);
    }
  }

  /** Whether a race may run at this fault now (then it counts as one). */
  mayRace(vcpu: Vcpu, gfn: number): boolean {
    return this.races.mayRace(vcpu, gfn);
  }

  /** Runs the scenario to the end and returns the report. Throws RunError if a VM cannot go on. */
  run(): Report {
    const it = this.schedule();
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }

  /** run(), awaiting `pause` every YIELD_EVERY scheduling decisions (so a CLI can handle signals meanwhile). */
  async runAsync(pause: () => Promise<void>): Promise<Report> {
    const it = this.schedule();
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
      await pause();
    }
  }

  /** The run as a generator that yields every YIELD_EVERY scheduling decisions. */
  private *schedule(): Generator<void, Report> {
    const m = this.machine;
    const checker = m.checker;
    let sinceYield = 0;
    const sampleEvery = this.opts.sampleEvery ?? Math.max(1000, Math.ceil(this.plannedTotal / 100));
    let nextSample = sampleEvery;
    const full = this.opts.checks === "full";
    if (full) checker.checkShadowWalks = true;
    let slices = 0;
    try {
      this.sample();
      for (;;) {
        if (full && ++slices % CHECK_EVERY === 0 && checker.checkStructures() > 0) return buildReport(this);
        this.runTimeline();
        if (this.balloons) this.runDeviceWork();
        if (m.migrations.length > 0) this.tickMigrations(); // live migration
        const agents = this.runnable();
        if (agents.length === 0) {
          if (this.phases.waiting.size > 0) throw new RunError(this.phases.deadlock());
          break;
        }
        const pick = agents[agents.length === 1 ? 0 : this.rng.nextInt(agents.length)]!;
        if (pick === "kswapd") m.host.kswapdStep();
        else this.vcpuSlice(pick[0], pick[1]);
        // ksmd (ksm_scan_thread): a batch each time the model clock passes its wakeup.
        if (m.host.ksm.cfg.run === 1) m.host.ksm.tick(this.cost().cycles);
        if (sampleEvery > 0 && this.accesses >= nextSample) {
          this.sample();
          while (nextSample <= this.accesses) nextSample += sampleEvery;
        }
        this.opts.onProgress?.(this.accesses, this.plannedTotal);
        if (++sinceYield === YIELD_EVERY) {
          sinceYield = 0;
          yield;
        }
      }
      this.runTimeline(true);
      for (const mr of m.migrations) mr.migration.drain(); // live migration: the rest with the guest idle
      if (this.balloons) this.settleDeviceWork();
      if (sampleEvery > 0) this.sample();
    } catch (e) {
      if (!(e instanceof VmFailure)) throw e;
      // A stale spte (debug switch on) is the checker's finding, not a failed run: stop and report it.
      if (!m.vms.some((vm) => vm.qemu.kvm.staleInstalls > 0)) throw new RunError(e.message);
      checker.violation(e.message);
      return buildReport(this);
    }
    if (this.opts.checkMappings ?? true) checker.checkStaleMappings();
    checker.checkStructures();
    return buildReport(this);
  }

  /** Cycles so far under the cost model. */
  cost(): CostResult {
    return applyCost(this.costs, costCounts(this.machine));
  }

  private runnable(): ("kswapd" | [VmState, number])[] {
    const out: ("kswapd" | [VmState, number])[] = [];
    for (const vm of this.machine.vms) {
      for (let cpu = 0; cpu < vm.runQueues.length; cpu++) {
        if (vm.runQueues[cpu]!.some((p) => this.phases.canRun(p))) out.push([vm, cpu]);
        else vm.qemu.kvm.vcpus[cpu]!.halt(); // finished or waiting at a phase barrier: out of guest mode
      }
    }
    if (this.machine.host.kswapdRunning()) out.push("kswapd");
    return out;
  }

  /** One slice of vCPU `cpu` of `vm`: its current process runs steps until SLICE accesses or a yield. */
  private vcpuSlice(vm: VmState, cpu: number): void {
    let ps = this.pickProcess(vm, cpu);
    let budget = SLICE;
    while (ps !== null && budget > 0) {
      if (ps.churn !== null) {
        const made = this.steps.churnRound(ps);
        this.accesses += made;
        budget -= Math.max(1, made);
        continue;
      }
      if (ps.stream === null && !this.steps.nextStream(ps)) {
        // Finished, or yielded to another process with `switch`.
        ps = this.pickProcess(vm, cpu);
        continue;
      }
      if (ps.churn !== null) continue;
      const n = this.fill(ps, budget);
      if (n === 0) {
        ps.stream = null;
        ps.traceMapping = false;
        continue;
      }
      this.runBatch(ps, n);
      budget -= n;
      const used = (vm.timesliceUsed[cpu] ?? 0) + n;
      vm.timesliceUsed[cpu] = used;
      if (used >= TIMESLICE && vm.runQueues[cpu]!.filter((p) => this.phases.canRun(p)).length > 1) {
        this.rotate(vm, cpu);
        break;
      }
    }
  }

  /**
   * The next up to `budget` accesses of `ps`'s stream into a batch; returns how many. A stream of
   * reads and writes fills the vCPU's own batch where the slice runs batched (sim/access_batch.ts):
   * the core draws into the memory it translates from, the access kinds already made.
   */
  private fill(ps: ProcState, budget: number): number {
    const b = this.batch;
    const want = Math.min(budget, b.capacity);
    const stream = ps.stream!;
    const vcpuBatch = stream.readsAndWrites === true ? this.batched.vcpuBatch(ps, want) : null;
    this.inPlace = vcpuBatch !== null;
    try {
      if (vcpuBatch !== null) return stream.fill(vcpuBatch);
      if (want >= b.capacity) return stream.fill(b);
      // Streams fill a whole batch; a short budget uses a smaller one over the same arrays.
      return stream.fill(new AccessBatch(want, { addrs: b.addrs, ops: b.ops, kinds: OP_KINDS, core: null }));
    } catch (e) {
      if (e instanceof TraceError) throw new VmFailure(`${ps.vm.cfg.name}/${ps.cfg.name}: ${e.message}`);
      throw e;
    }
  }

  /** Runs the batch's first `n` accesses, the clock advancing one per access. */
  private runBatch(ps: ProcState, n: number): void {
    if (this.inPlace) {
      this.batched.runInPlace(ps, n, this.accesses);
      this.accesses += n;
      return;
    }
    const b = this.batch;
    if (ps.traceMapping) this.steps.mapTraceRegions(ps, b, n);
    if (this.batched.run(ps, b.addrs, b.ops, n, this.accesses)) {
      this.accesses += n;
      return;
    }
    const bus = this.machine.bus;
    for (let i = 0; i < n; i++) {
      bus.now = this.accesses + i;
      this.machine.runAccess(ps, b.addrs[i]!, b.ops[i]!);
    }
    this.accesses += n;
  }

  /** The process vCPU `cpu` runs now (context-switching to the next runnable one if needed). */
  private pickProcess(vm: VmState, cpu: number): ProcState | null {
    const cur = vm.current[cpu] ?? null;
    if (cur !== null && this.phases.canRun(cur)) return cur;
    const next = vm.runQueues[cpu]!.find((p) => this.phases.canRun(p)) ?? null;
    if (next !== null) this.switchTo(vm, cpu, next);
    return next;
  }

  private rotate(vm: VmState, cpu: number): void {
    const q = vm.runQueues[cpu]!;
    const cur = vm.current[cpu];
    const i = cur ? q.indexOf(cur) : -1;
    for (let k = 1; k <= q.length; k++) {
      const p = q[(i + k) % q.length]!;
      if (this.phases.canRun(p)) {
        this.switchTo(vm, cpu, p);
        return;
      }
    }
  }

  /** StepScheduler: vCPU `cpu` of `vm` runs `ps` from now on (a guest context switch). */
  switchTo(vm: VmState, cpu: number, ps: ProcState): void {
    if (vm.current[cpu] === ps) return;
    vm.current[cpu] = ps;
    vm.timesliceUsed[cpu] = 0;
    if (ps.process !== null) vm.contextSwitch(ps.proc, cpu);
  }

  /** StepScheduler: `ps` reached phase `name`; true when that completed the barrier (the boundary happened and `ps` goes on). */
  arrive(ps: ProcState, name: string): boolean {
    if (!this.phases.arrive(ps, name)) return false;
    this.boundary(name);
    this.phases.release(name);
    return true;
  }

  /** Runs timeline actions whose time has come (all remaining ones at the end, with `flush`). */
  private runTimeline(flush = false): void {
    while (this.timeline.length > 0) {
      const ev = this.timeline[0]!;
      const now = ev.at.clock === "accesses" ? this.accesses : this.cost().cycles;
      if (!flush && now < ev.at.value) return;
      if (flush && now < ev.at.value) {
        this.timeline.shift();
        continue;
      }
      this.timeline.shift();
      this.applyAction(ev.action);
    }
  }

  private applyAction(a: TimelineAction): void {
    const timed = a.kind === "balloon" || a.kind === "migrate";
    applyTimelineAction(this.machine, a, this.opts.checkMappings ?? true, timed ? this.cost().cycles : 0);
  }

  /** Guest deferred work due now (balloon retries, free page reporting); the clock is read only when some is pending. */
  private runDeviceWork(): void {
    for (const vm of this.machine.vms) {
      const b = vm.balloon;
      if (b === null || (b.driver.nextDue() === Number.POSITIVE_INFINITY && !vm.guest.alloc.reportRequested)) continue;
      if (b.driver.runDue(this.cost().cycles) && (this.opts.checkMappings ?? true)) this.machine.checker.checkStaleMappings();
    }
  }

  /**
   * After the last access the guests sit idle: deferred work runs at its due times (a clock of
   * its own from here, as nothing else advances the cost model) until none is left.
   */
  private settleDeviceWork(): void {
    const start = this.cost().cycles;
    for (const vm of this.machine.vms) {
      const b = vm.balloon;
      if (b === null) continue;
      const d = b.driver;
      // One last try of a balloon short of its target: nothing frees guest memory while idle.
      if (d.retryAt !== Number.POSITIVE_INFINITY) d.configChanged(Math.max(start, d.retryAt));
      d.retryAt = Number.POSITIVE_INFINITY;
      let now = start;
      d.runDue(now);
      for (let runs = 0; runs < 10_000 && d.nextDue() !== Number.POSITIVE_INFINITY; runs++) {
        now = Math.max(now, d.nextDue());
        d.runDue(now);
      }
    }
  }

  /** Live migration: each migration's link catches up with the guest's time. */
  private tickMigrations(): void {
    const now = this.cost().cycles;
    for (const mr of this.machine.migrations) mr.migration.tick(now);
  }

  /** The boundary of phase `name`: snapshot every counter, then run its timeline actions (vCPUs stopped between slices). */
  private boundary(name: string): void {
    this.boundaries.push({ name, at: takeSnapshot(this.machine, this.accesses) });
    if (this.machine.bus.on) this.machine.bus.emit("sim.phase", { phase: name, accesses: this.accesses });
    // Every vCPU is back in the VMM (a selftest's ucall): out of guest mode, so no flush IPIs reach it.
    for (const vm of this.machine.vms) for (const v of vm.qemu.kvm.vcpus) v.halt();
    for (const a of this.phases.actionsAt(name)) this.applyAction(a);
  }

  /** Whether the scenario marks phases (the report then has `phases`). */
  get hasPhases(): boolean {
    return this.boundaries.length > 0;
  }

  /** Each phase's counters, the last one ending now; undefined when the scenario marks no phase. */
  phaseReports(): PhaseReport[] | undefined {
    if (!this.hasPhases) return undefined;
    const now = takeSnapshot(this.machine, this.accesses);
    const names = this.machine.vms.map((vm) => vm.cfg.name);
    return this.boundaries.map((b, i) => phaseReport(b.name, names, this.costs, b.at, this.boundaries[i + 1]?.at ?? now));
  }

  /** One point of the time series. */
  private sample(): void {
    this.timeSeries.sample(this.machine, this.accesses, this.cost().cycles);
  }
}
