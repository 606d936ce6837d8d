// SPDX-License-Identifier: MIT
// The step interpreter: what each step of a guest process does (SCENARIO.md "steps"). Memory
// steps (mmap, munmap, switch, phase markers, a guest without a kernel's page-table stores)
// run at once; access steps open an access stream the scheduler drains slice by slice; churn
// steps run a round at a time; a trace maps the traced program's regions as it touches them.

import { PAGE_SIZE } from "../hw/addr.js";
import { Prng } from "../workload/prng.js";
import {
  type AccessBatch,
  type AccessStream,
  OP_READ,
  OP_WRITE,
  PhasesStream,
  PointerChaseStream,
  RandomStream,
  SequentialStream,
  TouchStream,
  ZipfStream,
} from "../workload/stream.js";
import { type ByteSource, OP_FETCH, looksLikeProgramImage, openTrace } from "../workload/trace.js";
import { VmFailure } from "../kvm/kvm.js";
import { type Machine, ProcState, type VmState, setStepContent } from "./machine.js";
import type { Scenario, Step } from "./scenario_schema.js";

type AccessStep = Extract<Step, { kind: "touch" | "random" | "sequential" | "zipf" | "pointerChase" | "phases" }>;
type SelftestStep = Extract<Step, { kind: "setPte" | "setPde" | "invlpg" | "loadCr3" | "exit" }>;

/** What steps need of the scheduler. */
export interface StepScheduler {
  /** Vcpu `cpu` of `vm` runs `ps` from now on (a guest context switch). */
  switchTo(vm: VmState, cpu: number, ps: ProcState): void;
  /** `ps` reached its marker of phase `name`: true when it goes on, false when it waits for the others. */
  arrive(ps: ProcState, name: string): boolean;
}

export class StepRunner {
  constructor(
    private readonly machine: Machine,
    /** Seeds each access step's stream (with the step's place). */
    private readonly seed: number,
    private readonly sched: StepScheduler,
    /** Opens a trace file named by a `trace` step; absent where files cannot be read. */
    private readonly openFile: ((path: string) => ByteSource) | undefined,
  ) {}

  /**
   * Runs `ps`'s non-access steps until one gives it an access stream (or a churn). Returns
   * false when the process finished or yielded the vCPU.
   */
  nextStream(ps: ProcState): boolean {
    const vm = ps.vm;
    const steps = ps.cfg.steps;
    const bus = this.machine.bus;
    while (ps.stepIdx < steps.length) {
      const step = steps[ps.stepIdx++]!;
      setStepContent(ps, undefined);
      if (bus.on) bus.emit("sim.step", { vm: vm.cfg.name, process: ps.cfg.name, step: ps.stepIdx - 1 });
      switch (step.kind) {
        case "mmap":
        case "mmapFile":
        case "munmap":
          this.mappingStep(ps, step);
          break;
        case "switch": {
          const target = vm.procs.find((p) => p.cfg.name === step.to)!;
          if (target.cpu === ps.cpu && !target.done) {
            this.sched.switchTo(vm, ps.cpu, target);
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
            touch: step.kind === "mmapChurn" ? (step.touch ?? step.size / PAGE_SIZE) : step.size / PAGE_SIZE,
            round: 0,
          };
          return true;
        case "phase":
          if (this.sched.arrive(ps, step.name)) break;
          return false;
        case "trace":
          this.startTrace(ps, step);
          return true;
        case "setPte":
        case "setPde":
        case "invlpg":
        case "loadCr3":
        case "exit":
          this.selftestStep(ps, step);
          break;
        default:
          this.startAccesses(ps, step);
          return true;
      }
    }
    ps.done = true;
    return false;
  }

  private mappingStep(ps: ProcState, step: Extract<Step, { kind: "mmap" | "mmapFile" | "munmap" }>): void {
    const vm = ps.vm;
    if (step.kind === "munmap") {
      const r = ps.regions.get(step.name)!;
      vm.munmap(ps.proc, r.gva, r.size, ps.cpu);
      ps.regions.delete(step.name);
      return;
    }
    const opts = step.kind === "mmapFile" ? { file: step.file, shared: step.shared } : step.hugePage ? { hugePage: "2m" as const } : {};
    const gva = vm.mmap(ps.proc, step.name, step.size, opts);
    ps.regions.set(step.name, { gva, size: step.size });
  }

  private startTrace(ps: ProcState, step: Extract<Step, { kind: "trace" }>): void {
    const vm = ps.vm;
    const open = this.openFile;
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
  }

  private startAccesses(ps: ProcState, step: AccessStep): void {
    const vm = ps.vm;
    if (vm.selftest !== null) {
      const r = vm.selftest.region(step.name!);
      ps.user = r.user;
      ps.space = vm.selftest.layout.spaces[r.space]!;
    }
    ps.stream = this.streamFor(ps, step);
    setStepContent(ps, "content" in step ? step.content : undefined);
  }

  /** A step of a guest without a kernel: a page-table store, INVLPG, MOV to CR3 or a ucall, on this vCPU. */
  private selftestStep(ps: ProcState, step: SelftestStep): void {
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
  churnRound(ps: ProcState): number {
    const c = ps.churn!;
    const vm = ps.vm;
    const round = c.round++;
    let made = 0;
    if (c.kind === "mmapChurn") {
      const gva = vm.mmap(ps.proc, `churn${round}`, c.size);
      for (let p = 0; p < c.touch; p++, made++) this.machine.runAccess(ps, gva + p * PAGE_SIZE, OP_WRITE);
      vm.munmap(ps.proc, gva, c.size, ps.cpu);
    } else {
      // fork + exec: a new address space on this vCPU; it runs, exits, and the parent resumes.
      const child = vm.createProcess(`${ps.cfg.name}.child${round}`, ps.cpu);
      const cps = new ProcState(vm, ps.cfg, child, ps.cpu);
      vm.contextSwitch(child, ps.cpu);
      const gva = vm.mmap(child, "heap", c.size);
      for (let p = 0; p < c.touch; p++, made++) this.machine.runAccess(cps, gva + p * PAGE_SIZE, OP_WRITE);
      vm.exit(child, ps.cpu);
      vm.contextSwitch(ps.proc, ps.cpu);
    }
    if (--c.left === 0) ps.churn = null;
    return made;
  }

  private streamFor(ps: ProcState, step: AccessStep): AccessStream {
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
    const rng = Prng.derive(this.seed, `${vm.cfg.name}/${ps.cfg.name}/${ps.stepIdx - 1}`);
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
  mapTraceRegions(ps: ProcState, b: AccessBatch, n: number): void {
    const proc = ps.proc;
    const vm = ps.vm;
    for (let i = 0; i < n; i++) {
      const a = b.addrs[i]!;
      if (proc.findVma(a) !== null) continue;
      const op = b.ops[i]!;
      if (op === OP_FETCH || looksLikeProgramImage(a)) {
        const page = Math.floor(a / PAGE_SIZE);
        if (op === OP_WRITE) vm.mmap(proc, `trace@${a.toString(16)}`, PAGE_SIZE, { addr: page * PAGE_SIZE, exec: true });
        else vm.mmap(proc, `trace@${a.toString(16)}`, PAGE_SIZE, { addr: page * PAGE_SIZE, exec: true, file: ps.traceImage, pgoff: page });
        ps.traceRegions++;
        continue;
      }
      const chunk = 2 ** 20;
      const start = Math.floor(a / chunk) * chunk;
      try {
        vm.mmap(proc, `trace@${start.toString(16)}`, chunk, { addr: start, exec: true });
      } catch {
        vm.mmap(proc, `trace@${a.toString(16)}`, PAGE_SIZE, { addr: Math.floor(a / PAGE_SIZE) * PAGE_SIZE, exec: true });
      }
      ps.traceRegions++;
    }
  }
}

/** Accesses the scenario's steps will make (for progress and sampling). */
export function plannedAccesses(s: Scenario): number {
  let n = 0;
  for (const vm of s.vms) {
    for (const p of vm.processes) {
      const sizes = new Map<string, number>();
      for (const st of p.steps) {
        if (st.kind === "mmap" || st.kind === "mmapFile") sizes.set(st.name, st.size);
        else if (st.kind === "touch") n += Math.ceil((st.size ?? sizes.get(st.name ?? "") ?? 0) / PAGE_SIZE);
        else if (st.kind === "random") n += st.accesses;
        else if (st.kind === "sequential") n += st.accesses ?? Math.ceil((st.size ?? sizes.get(st.name ?? "") ?? 0) / st.stride);
        else if (st.kind === "zipf" || st.kind === "pointerChase" || st.kind === "phases") n += st.accesses;
        else if (st.kind === "mmapChurn") n += st.iterations * (st.touch ?? st.size / PAGE_SIZE);
        else if (st.kind === "processChurn") n += (st.count * st.size) / PAGE_SIZE;
      }
    }
  }
  return n;
}
