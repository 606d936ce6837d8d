// SPDX-License-Identifier: MIT
// The engine: a seeded scheduler that interleaves the agents of a run (each vCPU running
// its guest processes' steps, kswapd while it is awake, timeline actions at their time), a
// clock, samples over time, and the report at the end.
//
// A vCPU's slice is up to SLICE accesses of its current process; processes sharing a vCPU
// take turns every TIMESLICE accesses (a guest context switch: a CR3 load). kswapd's slice
// is one reclaim batch. Which runnable agent goes next is drawn from the scenario's seed.

import type { Vcpu } from "../kvm/vcpu.js";
import { Prng } from "../workload/prng.js";
import {
  AccessBatch,
  OP_READ,
  OP_WRITE,
  PhasesStream,
  PointerChaseStream,
  RandomStream,
  SequentialStream,
  TouchStream,
  ZipfStream,
} from "../workload/stream.js";
import { type ByteSource, OP_FETCH, TraceError, looksLikeProgramImage, openTrace } from "../workload/trace.js";
import { type CostResult, applyCost, costTable } from "./cost.js";
import { VmFailure } from "./guest_port.js";
import { Machine, ProcState, UNKNOWN, type VmState } from "./machine.js";
import { type CounterSnapshot, type PhaseReport, phaseReport, takeSnapshot } from "./phases.js";
import { START_PHASE, type Scenario, type Step, type TimelineAction, type TimelineEvent } from "./scenario_schema.js";
import { type Report, buildReport, type SeriesPoint } from "./report.js";

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
   * own tables (Machine.checkShadowWalks) and the invariants every CHECK_EVERY scheduler slices.
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
}

/**
 * Times in a row one access's fault is raced before the scheduler lets it through: a fair
 * scheduler lets a retried fault finish (only an adversary could page the page out forever).
 */
export const MAX_RACES_PER_ACCESS = 3;

/** Scheduler slices between two structure checks with checks "full". */
export const CHECK_EVERY = 64;

export class RunError extends Error {}

type TimedEvent = TimelineEvent & { at: { clock: "cycles" | "accesses" } };

export class Engine {
  readonly machine: Machine;
  readonly rng: Prng;
  /** Guest accesses done so far (the clock that timeline `accesses:` counts). */
  accesses = 0;
  readonly series: SeriesPoint[] = [];
  /** Timeline actions at a time (those at a phase run at its boundary instead). */
  private readonly timeline: TimedEvent[];
  private readonly batch = new AccessBatch(SLICE);
  /** The cost table in force: defaults with the scenario's overrides. */
  readonly costs: Record<string, number>;
  private readonly plannedTotal: number;
  private lastSample: Record<string, number> = {};

  constructor(
    readonly scenario: Scenario,
    readonly opts: RunOptions = {},
    machine?: Machine,
  ) {
    this.costs = costTable(scenario.cost);
    this.machine = machine ?? new Machine(scenario);
    this.rng = Prng.derive(opts.scheduleSeed ?? opts.seed ?? scenario.seed, "scheduler");
    this.timeline = scenario.timeline.filter((ev): ev is TimedEvent => ev.at.clock !== "phase").sort((a, b) => a.at.value - b.at.value);
    this.initPhases();
    this.plannedTotal = plannedAccesses(scenario);
    for (const vm of this.machine.vms) {
      vm.qemu.kvm.racePoint = (vcpu, point, gfn) => (this.opts.onRacePoint ?? defaultRacePoint)(this, vcpu, point, gfn);
      vm.qemu.kvm.debugSkipSeqCheck = opts.debugSkipSeqCheck === true;
      if (opts.invalidationRaces && vm.qemu.kvm.tdpMmu !== null)
        vm.qemu.mm.notifiers.racePoint = (range) => this.invalidationRace(vm, range);
    }
  }

  /** The last raced fault (vCPU, gfn, access) and how often in a row it was raced. */
  private racedVcpu: Vcpu | null = null;
  private racedGfn = -1;
  private racedAt = -1;
  private racedTimes = 0;
  /** Inside a fault run at an invalidation's race point (it races nothing itself). */
  private racing = false;

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

  /** Runs `fn` as a race: nothing it causes races again. */
  private race(fn: () => void): void {
    this.racing = true;
    try {
      fn();
    } finally {
      this.racing = false;
    }
  }

  /** Host race point inside an invalidation of `range` on `vm`'s mm: one fault attempt by a vCPU not handling an exit. */
  private invalidationRace(vm: VmState, range: { start: number; end: number }): void {
    const kvm = vm.qemu.kvm;
    if (this.racing) return;
    const p = this.opts.racePressure ?? 1 / 8;
    if (this.rng.nextFloat() >= p) return;
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
    this.race(() => vcpu.faultOnce(gfn * 4096, false));
  }

  /** Runs the scenario to the end and returns the report. Throws RunError if a VM cannot go on. */
  run(): Report {
    const it = this.steps();
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }

  /** run(), awaiting `pause` every YIELD_EVERY scheduling decisions (so a CLI can handle signals meanwhile). */
  async runAsync(pause: () => Promise<void>): Promise<Report> {
    const it = this.steps();
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
      await pause();
    }
  }

  /** The run as a generator that yields every YIELD_EVERY scheduling decisions. */
  private *steps(): Generator<void, Report> {
    const m = this.machine;
    let sinceYield = 0;
    const sampleEvery = this.opts.sampleEvery ?? Math.max(1000, Math.ceil(this.plannedTotal / 100));
    let nextSample = sampleEvery;
    const full = this.opts.checks === "full";
    if (full) m.checkShadowWalks = true;
    let slices = 0;
    try {
      this.sample();
      for (;;) {
        if (full && ++slices % CHECK_EVERY === 0 && m.checkStructures() > 0) return buildReport(this);
        this.runTimeline();
        const agents = this.runnable();
        if (agents.length === 0) {
          if (this.waiting.size > 0) throw new RunError(this.deadlock());
          break;
        }
        const pick = agents[agents.length === 1 ? 0 : this.rng.nextInt(agents.length)]!;
        if (pick === "kswapd") m.host.kswapdStep();
        else this.vcpuSlice(pick[0], pick[1]);
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
      if (sampleEvery > 0) this.sample();
    } catch (e) {
      if (!(e instanceof VmFailure)) throw e;
      // A stale spte (debug switch on) is the checker's finding, not a failed run: stop and report it.
      if (!m.vms.some((vm) => vm.qemu.kvm.staleInstalls > 0)) throw new RunError(e.message);
      m.violation(e.message);
      return buildReport(this);
    }
    if (this.opts.checkMappings ?? true) m.checkStaleMappings();
    m.checkStructures();
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
        if (vm.runQueues[cpu]!.some((p) => this.canRun(p))) out.push([vm, cpu]);
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
        const made = this.churnRound(ps);
        this.accesses += made;
        budget -= Math.max(1, made);
        continue;
      }
      if (ps.stream === null && !this.nextStream(ps)) {
        // Finished, or yielded to another process with `switch`.
        ps = this.pickProcess(vm, cpu);
        continue;
      }
      if (ps.churn !== null) continue;
      const b = this.batch;
      const want = Math.min(budget, b.capacity);
      let n: number;
      try {
        n = fillUpTo(ps.stream!, b, want);
      } catch (e) {
        if (e instanceof TraceError) throw new VmFailure(`${vm.cfg.name}/${ps.cfg.name}: ${e.message}`);
        throw e;
      }
      if (n === 0) {
        ps.stream = null;
        ps.traceMapping = false;
        continue;
      }
      if (ps.traceMapping) this.mapTraceRegions(ps, b, n);
      const bus = this.machine.bus;
      for (let i = 0; i < n; i++) {
        bus.now = this.accesses + i;
        this.machine.runAccess(ps, b.addrs[i]!, b.ops[i]!);
      }
      this.accesses += n;
      budget -= n;
      const used = (vm.timesliceUsed[cpu] ?? 0) + n;
      vm.timesliceUsed[cpu] = used;
      if (used >= TIMESLICE && vm.runQueues[cpu]!.filter((p) => this.canRun(p)).length > 1) {
        this.rotate(vm, cpu);
        break;
      }
    }
  }

  /** The process vCPU `cpu` runs now (context-switching to the next runnable one if needed). */
  private pickProcess(vm: VmState, cpu: number): ProcState | null {
    const cur = vm.current[cpu] ?? null;
    if (cur !== null && this.canRun(cur)) return cur;
    const next = vm.runQueues[cpu]!.find((p) => this.canRun(p)) ?? null;
    if (next !== null) this.switchTo(vm, cpu, next);
    return next;
  }

  private rotate(vm: VmState, cpu: number): void {
    const q = vm.runQueues[cpu]!;
    const cur = vm.current[cpu];
    const i = cur ? q.indexOf(cur) : -1;
    for (let k = 1; k <= q.length; k++) {
      const p = q[(i + k) % q.length]!;
      if (this.canRun(p)) {
        this.switchTo(vm, cpu, p);
        return;
      }
    }
  }

  private switchTo(vm: VmState, cpu: number, ps: ProcState): void {
    if (vm.current[cpu] === ps) return;
    vm.current[cpu] = ps;
    vm.timesliceUsed[cpu] = 0;
    if (ps.process !== null) vm.contextSwitch(ps.proc, cpu);
  }

  /**
   * Runs `ps`'s non-access steps until one gives it an access stream. Returns false when the
   * process finished or yielded the vCPU.
   */
  private nextStream(ps: ProcState): boolean {
    const vm = ps.vm;
    const steps = ps.cfg.steps;
    while (ps.stepIdx < steps.length) {
      const step = steps[ps.stepIdx++]!;
      if (this.machine.bus.on)
        this.machine.bus.emit("sim.step", { vm: vm.cfg.name, process: ps.cfg.name, step: ps.stepIdx - 1, kind: step.kind });
      switch (step.kind) {
        case "mmap": {
          const gva = vm.mmap(ps.proc, step.name, step.size, step.hugePage ? { hugePage: "2m" } : {});
          ps.regions.set(step.name, { gva, size: step.size });
          break;
        }
        case "mmapFile": {
          const gva = vm.mmap(ps.proc, step.name, step.size, { file: step.file, shared: step.shared });
          ps.regions.set(step.name, { gva, size: step.size });
          break;
        }
        case "munmap": {
          const r = ps.regions.get(step.name)!;
          vm.munmap(ps.proc, r.gva, r.size, ps.cpu);
          ps.regions.delete(step.name);
          break;
        }
        case "switch": {
          const target = vm.procs.find((p) => p.cfg.name === step.to)!;
          if (target.cpu === ps.cpu && !target.done) {
            this.switchTo(vm, ps.cpu, target);
            return false;
          }
          break;
        }
        case "mmapChurn":
        case "processChurn":
          ps.churn = {
            kind: step.kind,
            left: step.kind === "mmapChurn" ? step.iterations : step.count,
            size: step.size,
            touch: step.kind === "mmapChurn" ? (step.touch ?? step.size / 4096) : step.size / 4096,
            round: 0,
          };
          return true;
        case "phase":
          if (this.arrive(ps, step.name)) break;
          return false;
        case "trace": {
          const open = this.opts.openFile;
          if (!open)
            throw new VmFailure(
              `${vm.cfg.name}/${ps.cfg.name}: step ${ps.stepIdx - 1} (trace): this runner cannot read files; run the scenario from the CLI`,
            );
          try {
            ps.stream = openTrace(open(step.path), step.file);
          } catch (e) {
            throw new VmFailure(`${vm.cfg.name}/${ps.cfg.name}: trace ${step.file}: ${(e as Error).message}`);
          }
          ps.traceMapping = true;
          // The program image as one sparse file whose page index is the virtual page number.
          ps.traceImage = `image:${step.file}`;
          vm.createFile(ps.traceImage, 2 ** 48);
          return true;
        }
        // ---- A guest without a kernel (guest.kernel: none) ----
        case "setPte":
        case "setPde":
        case "invlpg":
        case "loadCr3":
        case "exit":
          this.selftestStep(ps, step);
          break;
        default: {
          if (vm.selftest !== null) {
            const r = vm.selftest.region(step.name!);
            ps.user = r.user;
            ps.space = vm.selftest.layout.spaces[r.space]!;
          }
          ps.stream = this.streamFor(ps, step);
          return true;
        }
      }
    }
    ps.done = true;
    return false;
  }

  /** A step of a guest without a kernel: a page-table store, INVLPG, MOV to CR3 or a ucall, on this vCPU. */
  private selftestStep(ps: ProcState, step: Extract<Step, { kind: "setPte" | "setPde" | "invlpg" | "loadCr3" | "exit" }>): void {
    const vm = ps.vm;
    const g = vm.selftest;
    if (g === null) throw new VmFailure(`${vm.cfg.name}/${ps.cfg.name}: ${step.kind} needs a guest without a kernel`);
    switch (step.kind) {
      case "setPte":
      case "setPde": {
        const r = g.region(step.region);
        if (!g.setEntry(ps.cpu, r, step.page, step.kind === "setPte" ? 1 : 2, step))
          throw new VmFailure(
            `${vm.cfg.name}/${ps.cfg.name}: step ${ps.stepIdx - 1} (${step.kind}): page ${step.page} of "${r.name}" has no table there any more (an earlier setPde cleared it)`,
          );
        break;
      }
      case "invlpg":
        g.invlpg(ps.cpu, g.region(step.region), step.page);
        break;
      case "loadCr3":
        g.loadCr3(ps.cpu, g.space(step.space), step.noFlush);
        break;
      case "exit":
        for (let i = 0; i < step.count; i++) g.ucall(ps.cpu);
        break;
    }
  }

  /** One round of a churn step: returns the accesses it made. */
  private churnRound(ps: ProcState): number {
    const c = ps.churn!;
    const vm = ps.vm;
    const round = c.round++;
    let made = 0;
    if (c.kind === "mmapChurn") {
      const gva = vm.mmap(ps.proc, `churn${round}`, c.size);
      for (let p = 0; p < c.touch; p++, made++) this.machine.runAccess(ps, gva + p * 4096, OP_WRITE);
      vm.munmap(ps.proc, gva, c.size, ps.cpu);
    } else {
      // fork + exec: a new address space on this vCPU; it runs, exits, and the parent resumes.
      const child = vm.createProcess(`${ps.cfg.name}.child${round}`, ps.cpu);
      const cps = new ProcState(vm, ps.cfg, child, ps.cpu);
      vm.contextSwitch(child, ps.cpu);
      const gva = vm.mmap(child, "heap", c.size);
      for (let p = 0; p < c.touch; p++, made++) this.machine.runAccess(cps, gva + p * 4096, OP_WRITE);
      vm.exit(child, ps.cpu);
      vm.contextSwitch(ps.proc, ps.cpu);
    }
    if (--c.left === 0) ps.churn = null;
    return made;
  }

  private streamFor(ps: ProcState, step: Extract<Step, { kind: "touch" | "random" | "sequential" | "zipf" | "pointerChase" | "phases" }>) {
    const vm = ps.vm;
    let base: number;
    let size: number;
    if (step.name !== undefined) {
      const r = ps.regions.get(step.name)!;
      base = r.gva;
      size = step.size ?? r.size;
    } else {
      size = step.size!;
      base = vm.mmap(ps.proc, `anon${ps.stepIdx - 1}`, size);
    }
    const rng = Prng.derive(this.opts.seed ?? this.scenario.seed, `${vm.cfg.name}/${ps.cfg.name}/${ps.stepIdx - 1}`);
    switch (step.kind) {
      case "touch":
        return new TouchStream(base, size, step.op === "write" ? OP_WRITE : OP_READ);
      case "random":
        return new RandomStream(base, size, step.accesses, step.writeRatio, rng);
      case "sequential":
        return new SequentialStream(base, size, step.accesses ?? Math.ceil(size / step.stride), step.writeRatio, step.stride, rng);
      case "zipf":
        return new ZipfStream(base, size, step.accesses, step.writeRatio, step.exponent, rng);
      case "pointerChase":
        return new PointerChaseStream(base, size, step.accesses, step.nodeSize, step.writeRatio, rng);
      case "phases":
        return new PhasesStream(base, size, step.accesses, step.workingSet, step.phases, step.writeRatio, rng);
    }
  }

  /**
   * A trace's addresses are the traced program's own: map each region it touches the first
   * time, as the program's own mappings were (a 1 MiB-aligned chunk, or the page alone where
   * that would overlap a mapping already there).
   *
   * Where the program's binary and libraries are (looksLikeProgramImage), or for any
   * instruction fetch, each page gets its own mapping at its first touch: a private file
   * mapping of the trace's image file if that touch reads (text, read-only data: a frame of
   * the guest's page cache; a later write copies it, as for .data), an anonymous page if it
   * writes (.bss, heap).
   */
  private mapTraceRegions(ps: ProcState, b: AccessBatch, n: number): void {
    const proc = ps.proc;
    const vm = ps.vm;
    for (let i = 0; i < n; i++) {
      const a = b.addrs[i]!;
      if (proc.findVma(a) !== null) continue;
      const op = b.ops[i]!;
      if (op === OP_FETCH || looksLikeProgramImage(a)) {
        const page = Math.floor(a / 4096);
        if (op === OP_WRITE) vm.mmap(proc, `trace@${a.toString(16)}`, 4096, { addr: page * 4096, exec: true });
        else vm.mmap(proc, `trace@${a.toString(16)}`, 4096, { addr: page * 4096, exec: true, file: ps.traceImage, pgoff: page });
        ps.traceRegions++;
        continue;
      }
      const chunk = 2 ** 20;
      const start = Math.floor(a / chunk) * chunk;
      try {
        vm.mmap(proc, `trace@${start.toString(16)}`, chunk, { addr: start, exec: true });
      } catch {
        vm.mmap(proc, `trace@${a.toString(16)}`, 4096, { addr: Math.floor(a / 4096) * 4096, exec: true });
      }
      ps.traceRegions++;
    }
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

  /** One timeline action, between slices (no vCPU is inside an access or a fault). */
  private applyAction(a: TimelineAction): void {
    const vm = this.machine.vms.find((v) => v.cfg.name === a.vm)!;
    if (this.machine.bus.on)
      this.machine.bus.emit("sim.timeline", { vm: a.vm, action: "madvise", advice: a.advice, gpa: a.gpa, size: a.size });
    try {
      vm.qemu.madvise(a.gpa, a.size, a.advice);
    } catch (e) {
      throw new VmFailure(`timeline madvise: ${(e as Error).message}`);
    }
    // What the guest will read there now: zero after DONTNEED, old or zero after FREE.
    if (a.advice === "DONTNEED" || a.advice === "FREE") {
      const first = Math.floor(a.gpa / 4096);
      const last = Math.floor((a.gpa + a.size - 1) / 4096);
      for (const gfn of [...vm.expected.keys()]) {
        if (gfn >= first && gfn <= last) {
          if (a.advice === "DONTNEED") vm.expected.delete(gfn);
          else vm.expected.set(gfn, UNKNOWN);
        }
      }
    }
    if (this.opts.checkMappings ?? true) this.machine.checkStaleMappings();
  }

  // ---- Phases (`- phase: name` steps) ----------------------------------------------------

  /** Per phase: the processes whose steps name it, and those that reached it (or finished). */
  private readonly phaseMembers = new Map<string, ProcState[]>();
  private readonly phaseArrived = new Map<string, Set<ProcState>>();
  /** Timeline actions attached to a phase, in file order. */
  private readonly phaseActions = new Map<string, TimelineAction[]>();
  /** Processes waiting at a phase marker for the others. */
  private readonly waiting = new Map<ProcState, string>();
  /** Boundaries so far, in the order they happened; the first is the start of the run (every counter zero). */
  private readonly boundaries: { name: string; at: CounterSnapshot | null }[] = [];

  private initPhases(): void {
    for (const vm of this.machine.vms) {
      for (const ps of vm.procs) {
        for (const st of ps.cfg.steps) {
          if (st.kind !== "phase") continue;
          const list = this.phaseMembers.get(st.name);
          if (list === undefined) this.phaseMembers.set(st.name, [ps]);
          else list.push(ps);
        }
      }
    }
    for (const ev of this.scenario.timeline) {
      if (ev.at.clock !== "phase") continue;
      const list = this.phaseActions.get(ev.at.phase) ?? [];
      list.push(ev.action);
      this.phaseActions.set(ev.at.phase, list);
    }
    if (this.phaseMembers.size > 0) this.boundaries.push({ name: START_PHASE, at: null });
  }

  /** Whether the scenario marks phases (the report then has `phases`). */
  get hasPhases(): boolean {
    return this.boundaries.length > 0;
  }

  private canRun(p: ProcState): boolean {
    return !p.done && !this.waiting.has(p);
  }

  /**
   * `ps` reached its marker of phase `name`. Returns true when that completed the barrier (the
   * boundary happened and `ps` goes on), false when `ps` waits for the others.
   */
  private arrive(ps: ProcState, name: string): boolean {
    let arrived = this.phaseArrived.get(name);
    if (arrived === undefined) this.phaseArrived.set(name, (arrived = new Set()));
    arrived.add(ps);
    if (!this.phaseMembers.get(name)!.every((p) => p.done || arrived.has(p))) {
      this.waiting.set(ps, name);
      return false;
    }
    this.boundary(name);
    for (const [p, at] of this.waiting) if (at === name) this.waiting.delete(p);
    return true;
  }

  /** The boundary of phase `name`: snapshot every counter, then run its timeline actions (vCPUs stopped between slices). */
  private boundary(name: string): void {
    this.boundaries.push({ name, at: takeSnapshot(this.machine, this.accesses) });
    if (this.machine.bus.on) this.machine.bus.emit("sim.phase", { phase: name, accesses: this.accesses });
    // Every vCPU is back in the VMM (a selftest's ucall): out of guest mode, so no flush IPIs reach it.
    for (const vm of this.machine.vms) for (const v of vm.qemu.kvm.vcpus) v.halt();
    for (const a of this.phaseActions.get(name) ?? []) this.applyAction(a);
  }

  private deadlock(): string {
    const at = [...this.waiting].map(([p, name]) => {
      const missing = this.phaseMembers
        .get(name)!
        .filter((q) => !q.done && !this.phaseArrived.get(name)!.has(q))
        .map((q) => `${q.vm.cfg.name}/${q.cfg.name}`);
      return `${p.vm.cfg.name}/${p.cfg.name} waits at phase "${name}" for ${missing.join(", ")}`;
    });
    return `no process can go on: ${at.join("; ")}`;
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
    const m = this.machine;
    const vmstat = m.host.vmstat();
    let exits = 0;
    let pfTaken = 0;
    let rss = 0;
    for (const vm of m.vms) {
      for (const v of vm.qemu.kvm.vcpus) {
        exits += v.stats.exits;
        pfTaken += v.stats.pf_taken;
      }
      rss += vm.qemu.rss().rss;
    }
    const now = { pgfault: vmstat.pgfault ?? 0, exits, pf_taken: pfTaken, pswpin: vmstat.pswpin ?? 0, pswpout: vmstat.pswpout ?? 0 };
    const prev = this.lastSample;
    this.series.push({
      accesses: this.accesses,
      cycles: this.cost().cycles,
      rss,
      free: (vmstat.nr_free_pages ?? 0) * 4096,
      swapUsed: m.host.swap ? (m.host.swap.totalSwapPages - m.host.swap.nrSwapPages) * 4096 : 0,
      faults: now.pgfault - (prev.pgfault ?? 0),
      exits: now.exits - (prev.exits ?? 0),
      pfTaken: now.pf_taken - (prev.pf_taken ?? 0),
      swapIns: now.pswpin - (prev.pswpin ?? 0),
      swapOuts: now.pswpout - (prev.pswpout ?? 0),
    });
    this.lastSample = now;
  }
}

/** The default race-point policy: now and then, kswapd (if awake) reclaims while a fault is in flight. */
function defaultRacePoint(engine: Engine, vcpu: Vcpu, point: string, gfn: number): void {
  const p = engine.opts.racePressure ?? 1 / 8;
  if (engine.opts.raceAgent === "pageout") {
    if (point !== "after-faultin" || engine.rng.nextFloat() >= p || !engine.mayRace(vcpu, gfn)) return;
    const vm = engine.machine.vms.find((v) => v.qemu.kvm === vcpu.kvm)!;
    vm.qemu.madvise(gfn * 4096, 4096, "PAGEOUT");
    return;
  }
  if (engine.machine.host.kswapdRunning() && engine.rng.nextFloat() < p && engine.mayRace(vcpu, gfn)) engine.machine.host.kswapdStep();
}

function fillUpTo(s: { fill(b: AccessBatch): number }, b: AccessBatch, want: number): number {
  if (want >= b.capacity) return s.fill(b);
  // Streams fill a whole batch; a short budget uses a smaller view of it.
  const view = { capacity: want, addrs: b.addrs, ops: b.ops, n: 0 } as AccessBatch;
  return s.fill(view);
}

/** Accesses the scenario's steps will make (for progress and sampling). */
export function plannedAccesses(s: Scenario): number {
  let n = 0;
  for (const vm of s.vms) {
    for (const p of vm.processes) {
      const sizes = new Map<string, number>();
      for (const st of p.steps) {
        if (st.kind === "mmap" || st.kind === "mmapFile") sizes.set(st.name, st.size);
        else if (st.kind === "touch") n += Math.ceil((st.size ?? sizes.get(st.name ?? "") ?? 0) / 4096);
        else if (st.kind === "random") n += st.accesses;
        else if (st.kind === "sequential") n += st.accesses ?? Math.ceil((st.size ?? sizes.get(st.name ?? "") ?? 0) / st.stride);
        else if (st.kind === "zipf" || st.kind === "pointerChase" || st.kind === "phases") n += st.accesses;
        else if (st.kind === "mmapChurn") n += st.iterations * (st.touch ?? st.size / 4096);
        else if (st.kind === "processChurn") n += (st.count * st.size) / 4096;
      }
    }
  }
  return n;
}

/** One VM's events for the cost model: its vCPUs' hardware and KVM counters, its guest's faults, and the host faults and swap-ins on QEMU's mm. */
export function vmCostCounts(vm: VmState): Record<string, number> {
  const c = {
    tlb_hit: 0,
    table_read: 0,
    data_access: 0,
    vm_exit: 0,
    kvm_page_fault: 0,
    host_fault: 0,
    swap_in: 0,
    tlb_flush: 0,
    gpte_access: 0,
    emulate: 0,
    guest_page_fault: 0,
  };
  for (const v of vm.qemu.kvm.vcpus) {
    const h = v.mmu.stats;
    c.tlb_hit += h.tlbHits;
    c.table_read += h.guestTableReads + h.nestedTableReads;
    c.data_access += h.dataAccesses;
    c.vm_exit += v.stats.exits;
    c.kvm_page_fault += v.stats.pf_taken;
    c.tlb_flush += v.stats.tlb_flush;
    c.gpte_access += v.stats.gpte_reads + v.stats.gpte_writes;
    c.emulate += v.stats.pf_emulate;
  }
  const mm = vm.qemu.mm;
  c.host_fault = mm.minFlt + mm.majFlt;
  c.swap_in = mm.majFlt;
  c.guest_page_fault = vm.kernel?.stats.pgfault ?? 0;
  return c;
}

/** Event counts for the cost model over the whole machine: the VMs' events, and the host's faults and swap traffic. */
export function costCounts(m: Machine): Record<string, number> {
  const out: Record<string, number> = {};
  for (const vm of m.vms) for (const [k, v] of Object.entries(vmCostCounts(vm))) out[k] = (out[k] ?? 0) + v;
  const vmstat = m.host.vmstat();
  out.host_fault = vmstat.pgfault ?? 0;
  out.swap_in = vmstat.pswpin ?? 0;
  out.swap_out = vmstat.pswpout ?? 0;
  return out;
}
