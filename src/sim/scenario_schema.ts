// SPDX-License-Identifier: MIT
// The scenario format of SCENARIO.md, declared once: every key with its type, default,
// unit and one sentence (gem5's Param.Unsigned(64, "TLB size")). Validation, the
// README's parameter table (`scenarioParamTable`) and the editors' JSON Schema
// (`scenarioJsonSchema`) all come from these declarations.
//
// Steps and timeline actions are one-key objects (`- touch: {...}`), declared in the
// STEP_KINDS and TIMELINE_ACTIONS registries: adding a kind is one entry there (plus
// its cross-field checks in scenario_check.ts, if it has any).

import { z } from "zod";
import { PAGE_SIZE } from "../hw/addr.js";
import { checkScenario, fillScenario, linuxWatermarks } from "./scenario_check.js";
import {
  GUEST_PHYS_LIMIT,
  GUEST_RAM_MAX,
  HOST_RAM_MAX,
  HOST_RAM_MIN,
  MAX_VCPUS,
  NAME_PATTERN,
  ONE_KEY_PARAM,
  SWAP_MAX,
  WORK_LIMITS,
} from "./scenario_limits.js";
import { COUNT_PATTERN, formatSize, SIZE_PATTERN, tryParseAddress, tryParseCount, tryParseSize } from "./size.js";

export * from "./scenario_limits.js";

/** What a parameter declaration carries beyond zod's type (read back by the table and the error messages). */
export interface ParamMeta {
  description?: string;
  /** Unit of the value after parsing: "bytes", "cycles", "accesses"... */
  unit?: string;
  /** A scalar kind with its own parser and error wording. */
  kind?: "size" | "count" | "address";
  /** Shown in the table when the default is computed rather than a constant. */
  defaultText?: string;
}

const meta = (m: ParamMeta) => m as Record<string, unknown>;

interface SizeRules {
  /** Smallest value allowed (after parsing). */
  min?: number;
  /** The value must be a multiple of this. */
  align?: number;
  max?: number;
  /** Why `max` is the maximum, said after "at most ...". */
  maxReason?: string;
}

function applyRules(value: number, rules: SizeRules, ctx: z.RefinementCtx, input: unknown): boolean {
  const { min, align, max, maxReason } = rules;
  let msg: string | undefined;
  if (min !== undefined && value < min) msg = `${formatSize(value)} is too small; at least ${formatSize(min)}`;
  else if (max !== undefined && value > max)
    msg = `${formatSize(value)} is too large; at most ${formatSize(max)}${maxReason ? ` (${maxReason})` : ""}`;
  else if (align !== undefined && value % align !== 0) {
    const up = Math.ceil(value / align) * align;
    const e = Number.isSafeInteger(up) ? formatSize(up) : formatSize(Math.floor(value / align) * align);
    msg = `${formatSize(value)} is not a multiple of ${formatSize(align)}; use a multiple, e.g. ${e}`;
  }
  if (msg === undefined) return true;
  ctx.addIssue({ code: "custom", message: msg, input });
  return false;
}

/** A size in bytes: a number, or a string like "512MiB" (see size.ts). */
export function size(description: string, rules: SizeRules = {}) {
  return z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const r = tryParseSize(v);
      if (!r.ok) {
        ctx.addIssue({ code: "custom", message: r.message, input: v });
        return z.NEVER;
      }
      return applyRules(r.value, rules, ctx, v) ? r.value : z.NEVER;
    })
    .meta(meta({ description, unit: "bytes", kind: "size" }));
}

/** A guest-physical (or other) address: like a size, with hex read as bytes. */
export function address(description: string, rules: SizeRules = {}) {
  return z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const r = tryParseAddress(v);
      if (!r.ok) {
        ctx.addIssue({ code: "custom", message: r.message, input: v });
        return z.NEVER;
      }
      return applyRules(r.value, rules, ctx, v) ? r.value : z.NEVER;
    })
    .meta(meta({ description, unit: "bytes", kind: "address" }));
}

/** A whole count: a number, or a string with `_` separators. */
export function count(description: string, unit: string, min = 0) {
  return z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const r = tryParseCount(v);
      if (!r.ok) {
        ctx.addIssue({ code: "custom", message: r.message, input: v });
        return z.NEVER;
      }
      if (r.value < min) {
        ctx.addIssue({ code: "custom", message: `${r.value} is too small; at least ${min}`, input: v });
        return z.NEVER;
      }
      return r.value;
    })
    .meta(meta({ description, unit, kind: "count" }));
}

function name(description: string) {
  return z
    .string()
    .regex(NAME_PATTERN, {
      error: (iss) => `${JSON.stringify(iss.input)} is not a name; letters, digits, _ . and -, starting with a letter or _`,
    })
    .describe(description);
}

function ratio(description: string) {
  return z
    .number()
    .min(0, { error: (iss) => `${iss.input} is below 0; a fraction from 0 to 1` })
    .max(1, { error: (iss) => `${iss.input} is above 1; a fraction from 0 to 1` })
    .describe(description);
}

// ---- Workload steps ------------------------------------------------------------------

const regionRules: SizeRules = { min: PAGE_SIZE, align: PAGE_SIZE };

/** `content`: unique (default) | zero | {dup: N}, the page contents the step's writes leave. */
const contentSchema = z
  .union([z.enum(["unique", "zero"]), z.strictObject({ dup: count("Distinct page contents: page i holds class i mod N", "contents", 1) })])
  .meta(
    meta({
      description:
        "What the writes store: unique (each write a value of its own), zero (pages stay all zeros) or {dup: N} (N distinct page contents, the same in every VM; KSM can merge them)",
      defaultText: "unique",
    }),
  );

/** `name` and `size` of the region a workload step addresses (SCENARIO.md, "Workload steps"). */
const regionFields = () => ({
  size: size(
    "Bytes of the region to use: the first `size` bytes of the named region, or the size of a fresh region when there is no `name`; default: the whole named region",
    regionRules,
  )
    .optional()
    .meta(meta({ defaultText: "whole region" })),
  name: name("Region made by an earlier `mmap` step of this process; without it the step maps a fresh region of `size` first").optional(),
  // ---- KSM (issue 15): what the writes store
  content: contentSchema.optional(),
});

// ---- Phase markers (issue 10, item 5) ------------------------------------------------

/** A phase's name: as `name()`, with the confusions of `phase` (a boundary) and `phases` (a workload) spelled out. */
function phaseName(description: string) {
  return z
    .string({
      error: (iss) =>
        iss.input !== null && typeof iss.input === "object" && !Array.isArray(iss.input)
          ? "a mapping is not a phase name; `phase` takes a name (- phase: populate) and marks a phase boundary; the working-set generator is `phases: {accesses: N, workingSet: SIZE}`"
          : `${JSON.stringify(iss.input) ?? String(iss.input)} is not a phase name; a name like populate`,
    })
    .regex(NAME_PATTERN, {
      error: (iss) => `${JSON.stringify(iss.input)} is not a phase name; letters, digits, _ . and -, starting with a letter or _`,
    })
    .describe(description);
}

/**
 * `- phase: populate`: a phase boundary and a barrier, like the iterations of KVM's selftests
 * (dirty_log_perf_test; access_tracking_perf_test's populate / access / age). A phase name is
 * global to the run; the process waits until every process whose steps name the phase has
 * reached it (or finished), then the boundary happens once: counters are snapshot, the
 * timeline actions `at: {phase: name}` run with the vCPUs stopped, and the processes go on.
 */
/** `- phases: populate` most likely meant the boundary `- phase: populate`. */
function phasesNotAMarker(iss: { code?: string; input?: unknown }): string | undefined {
  if (iss.code !== "invalid_type" || typeof iss.input !== "string") return undefined;
  return `${JSON.stringify(iss.input)} is not a mapping; \`phases\` is the working-set generator ({accesses: N, workingSet: SIZE}); a phase boundary is \`phase: ${iss.input}\` (singular)`;
}

export const PHASE_STEP_KINDS = {
  phase: phaseName(
    "A phase boundary and barrier (`- phase: populate`; not the `phases` workload): waits until every process that names the phase reaches it, then the phase starts; the report counts each phase apart",
  ).transform((name) => ({ name })),
} satisfies Record<string, z.ZodType>;

// ---- Selftest-style guest (guest.kernel: none) ---------------------------------------
// Like KVM's selftests: no guest kernel; the VMM writes the guest's page tables before the
// run (virt_map), and the guest code is workload steps over the mapped regions plus explicit
// page-table stores, INVLPG, MOV CR3 and no-op exits.

const selftestEntryFields = () => ({
  region: name("Region (of guest.spaces) whose entry the guest writes"),
  page: count("Page of the region, counting from 0 in the region's page size", "pages"),
  present: z.boolean().default(true).describe("P bit of the value written"),
  writable: z.boolean().default(true).describe("R/W bit of the value written"),
  accessed: z.boolean().default(false).describe("A bit of the value written"),
  dirty: z.boolean().default(false).describe("D bit of the value written (a leaf only)"),
});

/** Step kinds only a selftest-style guest has. */
export const SELFTEST_STEP_KINDS = {
  setPte: z
    .strictObject(selftestEntryFields())
    .describe(
      "Guest store to the PTE that maps a page of a 4 KiB region (its own frame, the given flags); under shadow paging it faults, unsyncs or is emulated",
    ),
  setPde: z
    .strictObject(selftestEntryFields())
    .describe(
      "Guest store to the PDE above a page of a region (a table pointer for a 4 KiB region, the leaf for a 2 MiB one); under shadow paging it is emulated",
    ),
  invlpg: z
    .strictObject({
      region: name("Region the address is in"),
      page: count("Page of the region, counting from 0 in the region's page size", "pages"),
    })
    .describe("INVLPG of a page of a region (exits under shadow paging)"),
  loadCr3: z
    .strictObject({
      space: name("Address space (of guest.spaces) to load; may be the current one"),
      noFlush: z.boolean().default(false).describe("CR3 bit 63: keep this PCID's TLB entries (needs guest.pcid)"),
    })
    .describe("MOV to CR3 of a space's root table, with its PCID when guest.pcid is on (exits under shadow paging)"),
  exit: z
    .strictObject({ count: count("Exits to make, one after another", "exits", 1).default(1) })
    .describe("A no-op exit to the VMM, like a selftest's GUEST_SYNC ucall (an I/O port write): counts an exit and nothing else"),
} satisfies Record<string, z.ZodType>;

/** A region the VMM maps before the run. */
const selftestRegionSchema = z
  .strictObject({
    name: name("Region name, unique in the VM; steps address it by this name"),
    gva: address("Guest-virtual start; a multiple of the page size", { align: PAGE_SIZE }),
    size: size("Bytes mapped; a multiple of the page size", regionRules),
    page: z.enum(["4k", "2m"]).default("4k").describe("Guest page size the VMM maps the region with"),
    cpl: z
      .literal([0, 3])
      .default(3)
      .describe("Privilege of the accesses: 3 maps the pages user-accessible and accesses them from user mode, 0 supervisor-only"),
  })
  .describe("Guest-virtual memory mapped to guest-physical memory nobody has written (placed from the top of guest RAM down)");

const selftestSpaceSchema = z
  .strictObject({
    name: name("Address space name, unique in the VM"),
    share: name(
      "An earlier space whose top-level entries this one copies, so both use the same lower tables (like clone_pgd_range)",
    ).optional(),
    regions: z.array(selftestRegionSchema).default([]).describe("Regions mapped in this space"),
  })
  .describe("A guest address space: a root table the VMM builds, loaded by CR3");

/** One entry per step kind; the key is the YAML key (`- touch: {...}`). */
export const STEP_KINDS = {
  touch: z
    .strictObject({
      ...regionFields(),
      op: z.enum(["read", "write"]).describe("Whether each page is read or written"),
    })
    .describe("Visit each 4 KiB page of the region once, in address order"),
  random: z
    .strictObject({
      ...regionFields(),
      accesses: count("Number of accesses", "accesses", 1),
      writeRatio: ratio("Fraction of the accesses that are writes, from 0 to 1"),
    })
    .describe("Uniformly random accesses to the region (seeded)"),
  sequential: z
    .strictObject({
      ...regionFields(),
      accesses: count("Number of accesses, wrapping around at the end of the region; default: one pass", "accesses", 1)
        .optional()
        .meta(meta({ defaultText: "size / stride (one pass)" })),
      writeRatio: ratio("Fraction of the accesses that are writes, from 0 to 1 (seeded)").default(0),
      stride: size("Bytes between consecutive accesses", { min: 1 }).default(PAGE_SIZE),
    })
    .describe("Accesses from the start of the region in steps of `stride` bytes"),
  zipf: z
    .strictObject({
      ...regionFields(),
      accesses: count("Number of accesses", "accesses", 1),
      writeRatio: ratio("Fraction of the accesses that are writes, from 0 to 1").default(0),
      exponent: z
        .number()
        .min(0)
        .max(5)
        .default(0.99)
        .describe("Zipf exponent s: page of rank k is chosen with probability proportional to 1/k^s"),
    })
    .describe("A Zipfian hot set: a few pages take most accesses (seeded; hot pages scattered over the region)"),
  pointerChase: z
    .strictObject({
      ...regionFields(),
      accesses: count("Number of accesses (links followed)", "accesses", 1),
      nodeSize: size("Bytes per node of the linked structure", { min: 8, align: 8 }).default(64),
      writeRatio: ratio("Fraction of the accesses that are writes, from 0 to 1").default(0),
    })
    .describe("Follow a random cycle through all nodes of the region, as a linked-list walk does (seeded)"),
  phases: z
    .strictObject(
      {
        ...regionFields(),
        accesses: count("Number of accesses in all phases", "accesses", 1),
        workingSet: size("Bytes each phase's accesses are spread over", { min: PAGE_SIZE, align: PAGE_SIZE }),
        phases: count("Number of phases; the working set moves between them", "phases", 1).default(4),
        writeRatio: ratio("Fraction of the accesses that are writes, from 0 to 1").default(0),
      },
      { error: phasesNotAMarker },
    )
    .describe("Working-set phases: uniform accesses over a window that moves to a new place each phase (seeded)"),
  mmapChurn: z
    .strictObject({
      iterations: count("mmap / touch / munmap rounds", "rounds", 1),
      size: size("Bytes mapped each round", regionRules),
      touch: count("Pages written each round (default: all)", "pages", 0).optional(),
    })
    .describe("Map a fresh region, write its pages, unmap it; repeat (page-table churn in the guest)"),
  processChurn: z
    .strictObject({
      count: count("Short-lived processes to run", "processes", 1),
      size: size("Bytes each one maps and writes", regionRules),
    })
    .describe("fork/exec/exit churn: start a process on this vCPU, switch to it, map and write memory, exit, switch back"),
  trace: z
    .strictObject({
      file: z
        .string()
        .min(1, { error: "empty file name; a path to a trace, relative to the scenario file" })
        .describe("Trace file (Lackey text, memvirt binary or ChampSim records; plain, gzip or xz), relative to the scenario file"),
    })
    .describe("Replay a recorded trace of virtual addresses"),
  mmap: z
    .strictObject({
      name: name("Name that later steps use to refer to the region"),
      size: size("Bytes to map", regionRules),
      hugePage: z
        .boolean()
        .default(false)
        .describe("true: madvise(MADV_HUGEPAGE) in the guest, so aligned 2 MiB parts can use guest huge pages"),
    })
    .describe("Map an anonymous region in the guest process (guest-side mmap)"),
  munmap: z
    .strictObject({
      name: name("Region to unmap"),
    })
    .describe("Unmap a region made by an earlier mmap step (guest frees frames, flushes the TLB)"),
  switch: z
    .strictObject({
      to: name("Process of the same VM to switch to"),
    })
    .describe("Context switch to another process of the VM (CR3 load)"),
  ...PHASE_STEP_KINDS,
  // ---- Steps of a selftest-style guest (guest.kernel: none) ----
  ...SELFTEST_STEP_KINDS,
  // ---- guest page cache (file mappings)
  mmapFile: z
    .strictObject({
      name: name("Name that later steps use to refer to the region"),
      file: name("File of the guest's filesystem to map; every mapping of the same name in the VM shares its page-cache pages"),
      size: size("Bytes to map from the start of the file; the file is as large as its largest mapping in the VM", regionRules),
      shared: z
        .boolean()
        .default(false)
        .describe("true: MAP_SHARED, writes go to the page-cache page; false: MAP_PRIVATE, a write copies the page"),
    })
    .describe("Map a file in the guest process: pages are read from the virtual disk into the guest's page cache on first touch"),
} satisfies Record<string, z.ZodType>;

export type StepKind = keyof typeof STEP_KINDS;
/** Step kinds that address a region by `name` or a fresh `size`. */

// ---- Timeline ------------------------------------------------------------------------

export const TIMELINE_ACTIONS = {
  madvise: z
    .strictObject({
      vm: name("VM whose guest RAM the call applies to"),
      gpa: address("Guest-physical start of the range; a multiple of 4 KiB", { align: PAGE_SIZE, max: GUEST_PHYS_LIMIT }),
      size: size("Bytes in the range; a multiple of 4 KiB", regionRules),
      advice: z.enum(["DONTNEED", "FREE", "PAGEOUT", "COLD"]).describe("MADV_ advice QEMU (or a balloon) gives for the range"),
    })
    .describe("madvise() on QEMU's mapping of a guest-physical range, as a balloon or free-page reporting would"),
  // ---- virtio-balloon ----
  balloon: z
    .strictObject({
      vm: name("VM whose balloon the host sets (the VM needs `balloon`)"),
      target: size("Guest memory the host asks the guest to keep, as QEMU's `balloon` monitor command; the balloon takes ram - target", {
        align: PAGE_SIZE,
        max: GUEST_RAM_MAX,
      }),
    })
    .describe("QEMU's `balloon <size>`: the guest's virtio-balloon driver inflates (or deflates) towards ram - target"),
  // ---- live migration (sim/migrate.ts, qemu/migration.ts) ----
  migrate: z
    .strictObject({
      vm: name("VM to migrate, to a destination QEMU on the same host"),
      mode: z
        .enum(["precopy", "postcopy"])
        .default("precopy")
        .describe("precopy: iterate until the rest fits the downtime limit; postcopy: stop, start the destination, fetch pages on fault"),
      bandwidth: size("Link bandwidth (QEMU's max-bandwidth), bytes per second", { min: PAGE_SIZE }),
      downtimeLimit: count("downtime-limit, milliseconds (QEMU's default 300)", "ms", 1).default(300),
      rtt: count("Round-trip time of the link, microseconds (a post-copy page request waits one)", "us").default(100),
      autoConverge: z.boolean().default(false).describe("The auto-converge capability: throttle the vCPUs when they dirty memory too fast"),
      throttleInitial: count("cpu-throttle-initial, percent (QEMU's default 20)", "%", 1).default(20),
      throttleIncrement: count("cpu-throttle-increment, percent (QEMU's default 10)", "%", 1).default(10),
      maxIterations: count("Pre-copy rounds after which the last copy is forced whatever is left; 0: no cap", "rounds").default(0),
      postcopyAfter: count("Post-copy: pre-copy rounds before the switch (0: switch at once)", "rounds").default(0),
      clearBitmapShift: count(
        "x-clear-bitmap-shift: with manual protect, KVM_CLEAR_DIRTY_LOG clears chunks of 2^shift pages as they are sent (6 to 31; QEMU's default 18, 1 GiB)",
        "",
        6,
      ).default(18),
    })
    .describe("Live-migrate a VM's RAM over a link of the given bandwidth (QEMU's migrate command)"),
  // ---- dirty logging (sim/dirty_log_action.ts) ----
  dirtyLog: z
    .strictObject({
      vm: name("VM whose RAM memslots the action applies to"),
      op: z
        .enum(["start", "stop", "get", "clear"])
        .describe(
          "start/stop: KVM_MEM_LOG_DIRTY_PAGES on every RAM memslot; get: harvest the log (KVM_GET_DIRTY_LOG, or the dirty rings and KVM_RESET_DIRTY_RINGS); clear: get, then KVM_CLEAR_DIRTY_LOG in chunks (manual protect)",
        ),
      chunk: count("Pages per KVM_CLEAR_DIRTY_LOG call (clear only): a multiple of 64", "pages", 64).default(262144),
    })
    .describe("KVM dirty logging on a VM's RAM, as a VMM's migration rounds drive it"),
} satisfies Record<string, z.ZodType>;

export type TimelineActionKind = keyof typeof TIMELINE_ACTIONS;

/** A one-key object of `kinds`, turned into `{kind, ...fields}`. */
type Tagged<T extends Record<string, z.ZodType>> = { [K in keyof T & string]: { kind: K } & z.output<T[K]> }[keyof T & string];

function oneKeyShape<T extends Record<string, z.ZodType>>(kinds: T) {
  return Object.fromEntries(Object.entries(kinds).map(([k, s]) => [k, s.optional()])) as { [K in keyof T]: z.ZodOptional<T[K]> };
}

function presentKeys(o: object, kinds: Record<string, z.ZodType>): string[] {
  return Object.keys(o).filter((k) => k in kinds && (o as Record<string, unknown>)[k] !== undefined);
}

function exactlyOne(what: string, item: string, kinds: Record<string, z.ZodType>, present: string[], ctx: z.RefinementCtx) {
  if (present.length === 1) return;
  const list = Object.keys(kinds).join(", ");
  ctx.addIssue({
    code: "custom",
    params: { [ONE_KEY_PARAM]: true },
    message:
      present.length === 0
        ? `no ${what} given; one of ${list}`
        : `${present.join(" and ")} in one ${item}; one ${what} per ${item}, so split them into two`,
  });
}

const stepSchema = z
  .strictObject(oneKeyShape(STEP_KINDS))
  .superRefine((o, ctx) => exactlyOne("step kind", "step", STEP_KINDS, presentKeys(o, STEP_KINDS), ctx))
  .transform((o) => {
    const kind = presentKeys(o, STEP_KINDS)[0] as StepKind;
    return { kind, ...(o[kind] as object) } as Tagged<typeof STEP_KINDS>;
  })
  .meta({ description: "One workload or action: a mapping with exactly one key, the step kind", minProperties: 1, maxProperties: 1 });

const atSchema = z
  .strictObject({
    cycles: count("Simulated cycles since the start", "cycles").optional(),
    accesses: count("Guest accesses since the start, counted over the whole run", "accesses").optional(),
    phase: phaseName(
      "At the boundary of a phase that `phase` steps name: before the phase's first access, with the vCPUs stopped",
    ).optional(),
  })
  .superRefine((o, ctx) => {
    const given = (["cycles", "accesses", "phase"] as const).filter((k) => o[k] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: "custom",
        message: `${given.length === 0 ? "no time given" : given.length === 2 ? `both ${given.join(" and ")} given` : "cycles, accesses and phase given"}; exactly one of {cycles: N}, {accesses: N} or {phase: name}`,
      });
  })
  .transform((o): { clock: "phase"; phase: string } | { clock: "cycles"; value: number } | { clock: "accesses"; value: number } =>
    o.phase !== undefined
      ? { clock: "phase" as const, phase: o.phase }
      : o.cycles !== undefined
        ? { clock: "cycles" as const, value: o.cycles }
        : { clock: "accesses" as const, value: o.accesses! },
  )
  .describe("When the action happens: {cycles: N}, {accesses: N} or {phase: name}");

const timelineSchema = z
  .strictObject({ at: atSchema, ...oneKeyShape(TIMELINE_ACTIONS) })
  .superRefine((o, ctx) => exactlyOne("timeline action", "timeline entry", TIMELINE_ACTIONS, presentKeys(o, TIMELINE_ACTIONS), ctx))
  .transform((o) => {
    const kind = presentKeys(o, TIMELINE_ACTIONS)[0] as TimelineActionKind;
    return { at: o.at, action: { kind, ...(o[kind] as object) } as Tagged<typeof TIMELINE_ACTIONS> };
  })
  .meta({ description: "A host-side or cross-VM action at a point in simulated time", minProperties: 2, maxProperties: 2 });

// ---- Host, VMs, processes ------------------------------------------------------------

const watermarkRules: SizeRules = { align: PAGE_SIZE };

/** host.ksm: /sys/kernel/mm/ksm (issue 15). */
const ksmSchema = z
  .strictObject({
    run: z.literal([0, 1]).default(1).describe("/sys/kernel/mm/ksm/run: 1 ksmd merges, 0 stopped"),
    pages_to_scan: count("Pages ksmd scans per wakeup", "pages", 1).default(100),
    sleep_millisecs: count("Model time ksmd sleeps between batches (cost-model cycles at 3 GHz)", "ms", 0).default(20),
    use_zero_pages: z.boolean().default(false).describe("Merge all-zero pages with the zero page instead of a KSM page"),
  })
  .describe("KSM (kernel samepage merging): ksmd scans the VMs marked mergeable");

/** host.zswap: /sys/module/zswap/parameters (issue 15). */
const zswapSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("zswap stores swapped-out pages compressed in RAM; false: the swap device only"),
    maxPoolPercent: count("max_pool_percent: the pool's limit, percent of host RAM (the kernel's default 20)", "%", 0).default(20),
    acceptThresholdPercent: count(
      "accept_threshold_percent: after hitting the limit, the pool takes stores again at this percent of it (default 90)",
      "%",
      0,
    ).default(90),
    compressor: z
      .enum(["lz4", "zstd"])
      .default("lz4")
      .describe("Compression algorithm: sets the compressed size and the CPU cost per page"),
  })
  .describe("zswap: a compressed cache in front of the swap device, and the zeromap for zero pages (Linux 6.12+); needs swap");

const hostSchema = z
  .strictObject({
    ram: size("Host physical memory", {
      min: HOST_RAM_MIN,
      align: PAGE_SIZE,
      max: HOST_RAM_MAX,
      maxReason: "the most host RAM memvirt models; use a smaller host, scaled down with the guests",
    }),
    swap: size("Swap device size; 0: no swap", {
      align: PAGE_SIZE,
      max: SWAP_MAX,
      maxReason: "memvirt numbers swap slots with 31 bits; use a smaller swap device",
    }).default(0),
    thp: z
      .enum(["never", "madvise", "always"])
      .default("never")
      .describe("Anonymous transparent huge page policy (/sys/kernel/mm/transparent_hugepage/enabled)"),
    watermarks: z
      .strictObject({
        min: size("Free memory below which allocations reclaim directly (WMARK_MIN)", watermarkRules),
        low: size("Free memory below which kswapd wakes (WMARK_LOW)", watermarkRules),
        high: size("Free memory at which kswapd stops (WMARK_HIGH)", watermarkRules),
      })
      .optional()
      .meta(
        meta({
          description:
            "Zone watermarks; default derived from ram like Linux (min_free_kbytes = sqrt(16 * ram in KiB), watermark_scale_factor 10)",
          defaultText: "derived from ram",
        }),
      ),
    ksm: ksmSchema.optional(),
    zswap: zswapSchema.optional(),
  })
  .transform((h) => ({ ...h, watermarks: h.watermarks ?? linuxWatermarks(h.ram) }))
  .describe("The host machine");

const processSchema = z
  .strictObject({
    name: name("Process name, unique in its VM"),
    vcpu: z
      .int()
      .min(0, { error: "a vCPU index is 0 or more" })
      .default(0)
      .describe("Which vCPU runs it (time-shared with the others on that vCPU); below the VM's vcpus"),
    steps: z.array(stepSchema).default([]).describe("Workloads and actions, run in order"),
    space: name("With guest.kernel none: the address space the vCPU starts in (KVM_SET_SREGS); default the first").optional(),
  })
  .describe("A guest process (with guest.kernel none: the guest code one vCPU runs)");

const vmSchema = z
  .strictObject({
    name: name("VM name, unique on the host"),
    ram: size("Guest RAM (QEMU's -m)", {
      min: PAGE_SIZE,
      align: PAGE_SIZE,
      max: GUEST_RAM_MAX,
      maxReason: "the most guest RAM memvirt models: 1 TiB of guest-physical memory, PCI hole included; use a smaller guest",
    }),
    vcpus: z
      .int({ error: (iss) => `${JSON.stringify(iss.input)} is not a vCPU count; a whole number from 1 to ${MAX_VCPUS}` })
      .min(1, { error: (iss) => `${iss.input} vCPUs; a VM has 1 to ${MAX_VCPUS} vCPUs` })
      .max(MAX_VCPUS, { error: (iss) => `${iss.input} vCPUs is more than memvirt supports; 1 to ${MAX_VCPUS} vCPUs per VM` })
      .default(1)
      .describe(`Number of vCPUs, 1 to ${MAX_VCPUS}`),
    mmu: z
      .enum(["ept", "npt", "shadow"])
      .default("ept")
      .describe("How guest memory is translated: EPT (Intel) or NPT (AMD) nested paging, or shadow page tables"),
    backing: z
      .enum(["4k", "thp", "hugetlb-2m", "hugetlb-1g"])
      .default("4k")
      .describe("Host pages behind guest RAM: 4 KiB pages, transparent huge pages, or a hugetlbfs pool of 2 MiB or 1 GiB pages"),
    prealloc: z.boolean().default(false).describe("true: QEMU touches all guest RAM at start (-mem-prealloc); false: lazy"),
    mergeable: z
      .boolean()
      .default(false)
      .describe("true: QEMU marks guest RAM MADV_MERGEABLE (-machine mem-merge=on) so ksmd may merge it"),
    tlb: z
      .union([
        z.enum(["golden-cove", "zen4"]),
        count("Entries of the 4 KiB / 2 MiB TLB, 16-way: a multiple of 16 whose sets are a power of two", "entries", 16),
      ])
      .default("golden-cove")
      .superRefine((v, ctx) => {
        if (typeof v === "number" && (v % 16 !== 0 || ((v / 16) & (v / 16 - 1)) !== 0)) {
          ctx.addIssue({
            code: "custom",
            message: `${v} entries is not 16 ways times a power-of-two number of sets; for example 512, 1024, 2048 or 4096`,
          });
        }
      })
      .describe(
        "The vCPUs' TLB: golden-cove (Intel, 2048 entries 16-way), zen4 (AMD, 3072 entries 24-way), or a number of 16-way entries (for --compare tlb=512,2048)",
      ),
    guest: z
      .strictObject({
        levels: z.literal([4, 5]).default(4).describe("Guest paging levels: 4 (48-bit virtual addresses) or 5 (57-bit, LA57)"),
        pcid: z
          .boolean()
          .default(true)
          .describe(
            "CR4.PCIDE: CR3 loads tagged with PCIDs; false (Linux's nopcid) makes every CR3 load flush, and under shadow paging sync the roots",
          ),
        zeroPage: z.boolean().default(true).describe("The guest kernel maps its shared zero page on read faults of anonymous memory"),
        // ---- guest reclaim and swap (guest/vmscan.ts)
        swap: size(
          "A swap device of this size on the guest's own virtual disk: the guest kernel reclaims anonymous memory to it (watermarks, kswapd, direct reclaim); 0: no swap",
          { align: PAGE_SIZE, max: 64 * 2 ** 30, maxReason: "memvirt models guest swap devices up to 64 GiB; use a smaller one" },
        ).default(0),
        // ---- Selftest-style guest ----
        kernel: z
          .enum(["linux", "none"])
          .default("linux")
          .describe(
            "linux: the guest kernel builds page tables on its own faults; none: like KVM's selftests, the VMM builds them before the run (guest.spaces)",
          ),
        spaces: z
          .array(selftestSpaceSchema)
          .optional()
          .describe("With kernel none: the address spaces and regions the VMM maps (virt_map) before the run"),
      })
      .prefault({})
      .describe("The guest kernel"),
    processes: z.array(processSchema).default([]).describe("Guest processes"),
    // ---- virtio-balloon ----
    balloon: z
      .strictObject({
        deflateOnOom: z
          .boolean()
          .default(false)
          .describe("deflate-on-oom=on: the guest's OOM notifier takes 256 pages back from the balloon instead of killing"),
        freePageReporting: z
          .boolean()
          .default(false)
          .describe("free-page-reporting=on: the guest reports free blocks of reportingOrder or more and QEMU discards them"),
        reportingOrder: z
          .int({ error: (iss) => `${JSON.stringify(iss.input)} is not an order; a whole number from 0 to 18` })
          .min(0, { error: "an order from 0 (4 KiB) to 18 (1 GiB)" })
          .max(18, { error: "an order from 0 (4 KiB) to 18 (1 GiB)" })
          .default(9)
          .describe("page_reporting_order: the smallest free block reported, 2^order pages (9: 2 MiB, as x86 Linux)"),
        reportingDelayMs: count("PAGE_REPORTING_DELAY: milliseconds from a reportable free to the report (2 s in Linux)", "ms", 1).default(
          2000,
        ),
      })
      .optional()
      .describe("A virtio-balloon device (-device virtio-balloon), with its deflate-on-oom and free-page-reporting features"),
    // ---- dirty logging (sim/dirty_log_action.ts) ----
    dirtyLog: z
      .strictObject({
        mode: z
          .enum(["wp", "ring", "pml"])
          .default("wp")
          .describe(
            "wp: the memslots' dirty bitmaps (KVM_GET_DIRTY_LOG); ring: per-vCPU dirty rings (KVM_CAP_DIRTY_LOG_RING); pml: the bitmaps filled by Intel's page-modification logging (D bits cleared, not write-protected; mmu ept)",
          ),
        manualProtect: z
          .boolean()
          .default(false)
          .describe("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: pages are re-protected by KVM_CLEAR_DIRTY_LOG, not by the get"),
        initiallySet: z
          .boolean()
          .default(false)
          .describe("KVM_DIRTY_LOG_INITIALLY_SET (needs manualProtect): logging starts with every page dirty and nothing write-protected"),
        eagerSplit: z
          .boolean()
          .default(true)
          .describe("KVM's eager_page_split: huge pages are split to 4 KiB when logging starts, not on the first write"),
        ringEntries: count("Entries per vCPU dirty ring (mode ring): a power of two from 128 to 65536", "entries", 128).default(4096),
      })
      .optional()
      .describe("How KVM tracks dirty pages when a timeline dirtyLog action starts logging (off until then)"),
  })
  .describe("A virtual machine: a QEMU process with guest RAM, KVM's MMU and a guest kernel");

/** The raw schema: every key and local check; cross-field checks come in scenarioSchema. */
const scenarioObject = z.strictObject({
  seed: count("Seed every random choice derives from", "", 0).default(1),
  host: hostSchema,
  cost: z
    .record(
      z.string(),
      z
        .number()
        .min(0, { error: (iss) => `${iss.input} is negative; a cost is 0 or more cycles` })
        .meta(meta({ description: "Cycles for one event", defaultText: "the cost table's" })),
    )
    .default({})
    .meta(meta({ description: "Overrides of the cost table: event name -> cycles per event", unit: "cycles" })),
  vms: z
    .array(vmSchema)
    .min(1, { error: "no VMs; at least one, like [{name: vm0, ram: 1GiB}]" })
    .describe("The virtual machines on the host"),
  timeline: z.array(timelineSchema).default([]).describe("Host-side or cross-VM actions at points in simulated time"),
  limits: z
    .strictObject({
      accesses: count(
        `Guest accesses the run may plan (all runs of a --compare, sweep or check); default ${WORK_LIMITS.accesses.toLocaleString("en-US")}`,
        "accesses",
        1,
      ).optional(),
      vms: count(`VMs the host may run; default ${WORK_LIMITS.vms}`, "VMs", 1).optional(),
      memory: size(`Memory the model may be estimated to need; default ${formatSize(WORK_LIMITS.memory)}`, { min: 1 }).optional(),
    })
    .optional()
    .describe("Raise the bounds on the work a run plans (as --force does, but each by a stated amount)"),
});

export type RawScenario = z.output<typeof scenarioObject>;

/**
 * The whole format: keys and local checks, then (only if those pass, since they read
 * transformed values) the cross-field checks, then the defaults that depend on other keys.
 */
export const scenarioSchema = scenarioObject
  .superRefine(checkScenario, { when: (payload) => payload.issues.length === 0 })
  .transform(fillScenario);

export type Scenario = z.output<typeof scenarioSchema>;
export type HostConfig = Scenario["host"];
export type Watermarks = HostConfig["watermarks"];
export type VmConfig = Scenario["vms"][number];
export type ProcessConfig = VmConfig["processes"][number];
export type Step = ProcessConfig["steps"][number];
export type TimelineEvent = Scenario["timeline"][number];
export type TimelineAction = TimelineEvent["action"];
export type MmuMode = VmConfig["mmu"];
export type Backing = VmConfig["backing"];

// ---- Reading the declarations back -------------------------------------------------

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  in?: z.ZodType;
  valueType?: z.ZodType;
  entries?: Record<string, string | number>;
  values?: unknown[];
  options?: z.ZodType[];
  format?: string;
  defaultValue?: unknown;
}

const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** A declaration with its wrappers (optional, default, pipe) peeled off and their metadata merged. */
export interface ParamInfo {
  schema: z.ZodType;
  meta: ParamMeta;
  optional: boolean;
  hasDefault: boolean;
  defaultValue?: unknown;
}

export function unwrapParam(schema: z.ZodType): ParamInfo {
  const info: ParamInfo = { schema, meta: {}, optional: false, hasDefault: false };
  let s = schema;
  for (;;) {
    const m = z.globalRegistry.get(s) as ParamMeta | undefined;
    if (m) info.meta = { ...m, ...info.meta };
    if (info.meta.kind) break;
    const d = defOf(s);
    if (d.type === "optional") {
      info.optional = true;
      s = d.innerType!;
    } else if (d.type === "default" || d.type === "prefault") {
      if (!info.hasDefault) {
        info.hasDefault = true;
        info.defaultValue = d.defaultValue;
      }
      s = d.innerType!;
    } else if (d.type === "pipe") {
      s = d.in!;
    } else break;
  }
  info.schema = s;
  return info;
}

/** The declaration at a path of the input (numbers index lists), or undefined. */
export function paramAt(path: readonly PropertyKey[]): ParamInfo | undefined {
  let info = unwrapParam(scenarioObject);
  for (const seg of path) {
    const d = defOf(info.schema);
    let next: z.ZodType | undefined;
    if (d.type === "object") next = typeof seg === "string" ? d.shape![seg] : undefined;
    else if (d.type === "array") next = typeof seg === "number" ? d.element : undefined;
    else if (d.type === "record") next = d.valueType;
    if (next === undefined) return undefined;
    info = unwrapParam(next);
  }
  return info;
}

/** Keys an object at `path` accepts (for "did you mean"), or []. */
export function keysAt(path: readonly PropertyKey[]): string[] {
  const info = paramAt(path);
  const d = info && defOf(info.schema);
  return d?.type === "object" ? Object.keys(d.shape!) : [];
}

function typeName(info: ParamInfo): string {
  if (info.meta.kind) return info.meta.kind;
  const d = defOf(info.schema);
  switch (d.type) {
    case "enum":
      return Object.values(d.entries!).join(" | ");
    case "literal":
      return d.values!.map(String).join(" | ");
    case "number":
      return d.format === "safeint" ? "integer" : "number";
    case "object":
      return "mapping";
    case "array":
      return "list";
    case "record":
      return "mapping";
    default:
      return d.type;
  }
}

function defaultText(info: ParamInfo): string {
  if (info.meta.defaultText !== undefined) return info.meta.defaultText;
  if (!info.hasDefault) return info.optional ? "none" : "required";
  const v = info.defaultValue;
  if (info.meta.kind === "size" && typeof v === "number") return formatSize(v);
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** A row of the README's parameter table. */
export interface ParamRow {
  /** Key path: `vms[].ram`, `vms[].processes[].steps[].touch.op`, `cost.<event>`. */
  path: string;
  type: string;
  default: string;
  unit: string;
  description: string;
}

/** Every declared key, depth first in declaration order, for the README and `memvirt params`. */
export function scenarioParamTable(): ParamRow[] {
  const rows: ParamRow[] = [];
  const visit = (schema: z.ZodType, path: string, element = false) => {
    const info = unwrapParam(schema);
    if (path !== "") {
      rows.push({
        path,
        type: typeName(info),
        default: element ? "" : defaultText(info),
        unit: info.meta.unit ?? "",
        description: info.meta.description ?? "",
      });
    }
    const d = defOf(info.schema);
    if (d.type === "object") for (const [k, child] of Object.entries(d.shape!)) visit(child, path === "" ? k : `${path}.${k}`);
    else if (d.type === "array") visit(d.element!, `${path}[]`, true);
    else if (d.type === "record") visit(d.valueType!, `${path}.<event>`);
  };
  visit(scenarioObject, "");
  return rows;
}

/** The table as Markdown, for the README. */
export function scenarioParamMarkdown(): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = ["| Key | Type | Default | Unit | Description |", "|---|---|---|---|---|"];
  for (const r of scenarioParamTable())
    lines.push(`| \`${r.path}\` | ${esc(r.type)} | ${esc(r.default)} | ${r.unit} | ${esc(r.description)} |`);
  return lines.join("\n");
}

/** JSON Schema (draft 2020-12) of the scenario file as people write it, for editors. */
export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(scenarioObject, {
    io: "input",
    unrepresentable: "any",
    override: (ctx) => {
      const js = ctx.jsonSchema as Record<string, unknown>;
      const m = js as ParamMeta;
      const d = defOf(ctx.zodSchema as unknown as z.ZodType);
      if ((d.type === "default" || d.type === "prefault") && js.default === undefined) js.default = d.defaultValue;
      if (m.kind !== undefined) {
        delete js.type;
        js.anyOf =
          m.kind === "count"
            ? [
                { type: "integer", minimum: 0 },
                { type: "string", pattern: COUNT_PATTERN },
              ]
            : [
                { type: "integer", minimum: 0 },
                { type: "string", pattern: SIZE_PATTERN },
              ];
        js.examples = m.kind === "count" ? ["1_000_000"] : ["512MiB"];
      }
      delete js.kind;
      delete js.unit;
      delete js.defaultText;
    },
  }) as Record<string, unknown>;
  return { ...schema, title: "memvirt scenario", description: "A memvirt scenario, version 1 (docs/scenario.md)" };
}
