// SPDX-License-Identifier: MIT
import { describe, expect, expectTypeOf, test } from "vitest";
import { linuxWatermarks } from "./scenario_check.js";
import {
  keysAt,
  MAX_VCPUS,
  type MmuMode,
  type Scenario,
  type Step,
  type TimelineAction,
  paramAt,
  STEP_KINDS,
  scenarioJsonSchema,
  scenarioParamMarkdown,
  scenarioParamTable,
  TIMELINE_ACTIONS,
} from "./scenario_schema.js";
import { didYouMean, editDistance } from "./scenario_suggest.js";
import { GiB, KiB, MiB, TiB } from "./size.js";

describe("the parameter table (README)", () => {
  const rows = scenarioParamTable();
  const row = (path: string) => rows.find((r) => r.path === path);

  test("every key has a type, a default and a sentence", () => {
    expect(rows.length).toBeGreaterThan(50);
    for (const r of rows) {
      expect(r.description, r.path).not.toBe("");
      expect(r.type, r.path).not.toBe("");
    }
    expect(new Set(rows.map((r) => r.path)).size).toBe(rows.length);
  });

  test("rows carry the declared defaults and units", () => {
    expect(row("seed")).toMatchObject({ type: "count", default: "1" });
    expect(row("host.ram")).toMatchObject({ type: "size", default: "required", unit: "bytes" });
    expect(row("host.swap")).toMatchObject({ type: "size", default: "0B", unit: "bytes" });
    expect(row("host.thp")).toMatchObject({ type: "never | madvise | always", default: "never" });
    expect(row("host.watermarks")).toMatchObject({ default: "derived from ram" });
    expect(row("vms[].vcpus")).toMatchObject({ type: "integer", default: "1", description: `Number of vCPUs, 1 to ${MAX_VCPUS}` });
    expect(row("vms[].mmu")).toMatchObject({ type: "ept | npt | shadow", default: "ept" });
    expect(row("vms[].backing")).toMatchObject({ type: "4k | thp | hugetlb-2m | hugetlb-1g", default: "4k" });
    expect(row("vms[].prealloc")).toMatchObject({ type: "boolean", default: "false" });
    expect(row("vms[].guest.levels")).toMatchObject({ type: "4 | 5", default: "4" });
    expect(row("vms[].processes[].vcpu")).toMatchObject({ type: "integer", default: "0" });
    expect(row("vms[].processes[].steps[].sequential.stride")).toMatchObject({ type: "size", default: "4KiB" });
    expect(row("vms[].processes[].steps[].touch.op")).toMatchObject({ type: "read | write", default: "required" });
    expect(row("timeline[].at.cycles")).toMatchObject({ type: "count", unit: "cycles" });
    expect(row("timeline[].madvise.advice")).toMatchObject({ type: "DONTNEED | FREE | PAGEOUT | COLD" });
    expect(row("cost.<event>")).toMatchObject({ type: "number" });
  });

  test("every step kind and timeline action of the registries has rows, so a new kind documents itself", () => {
    for (const kind of Object.keys(STEP_KINDS)) expect(row(`vms[].processes[].steps[].${kind}`), kind).toBeDefined();
    for (const kind of Object.keys(TIMELINE_ACTIONS)) expect(row(`timeline[].${kind}`), kind).toBeDefined();
    expect(keysAt(["vms", 0, "processes", 0, "steps", 3])).toEqual(Object.keys(STEP_KINDS));
  });

  test("the Markdown table has one line per row", () => {
    const md = scenarioParamMarkdown().split("\n");
    expect(md.length).toBe(rows.length + 2);
    expect(md).toContain(
      "| `vms[].mmu` | ept \\| npt \\| shadow | ept |  | How guest memory is translated: EPT (Intel) or NPT (AMD) nested paging, or shadow page tables |",
    );
  });

  test("paramAt finds declarations through lists, steps and records", () => {
    expect(paramAt(["vms", 3, "ram"])?.meta).toMatchObject({ kind: "size", unit: "bytes" });
    expect(paramAt(["vms", 0, "processes", 0, "steps", 0, "random", "accesses"])?.meta.kind).toBe("count");
    expect(paramAt(["cost", "anything"])?.meta.description).toBe("Cycles for one event");
    expect(paramAt(["vms", 0, "nope"])).toBeUndefined();
  });
});

describe("the JSON Schema (editors)", () => {
  const schema = scenarioJsonSchema();

  function* objects(node: unknown, path = "$"): Generator<[string, Record<string, unknown>]> {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      for (const [i, n] of node.entries()) yield* objects(n, `${path}[${i}]`);
      return;
    }
    const o = node as Record<string, unknown>;
    yield [path, o];
    for (const [k, v] of Object.entries(o)) yield* objects(v, `${path}.${k}`);
  }

  test("is draft 2020-12 with a title", () => {
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.title).toBe("memvirt scenario");
  });

  test("closes every object (unknown keys are errors) and describes every property", () => {
    let n = 0;
    for (const [path, o] of objects(schema)) {
      if (o.type === "object" && o.properties) {
        n++;
        expect(o.additionalProperties, path).toBe(false);
        for (const [k, p] of Object.entries(o.properties as Record<string, Record<string, unknown>>)) {
          expect(typeof p.description, `${path}.${k}`).toBe("string");
        }
      }
    }
    expect(n).toBeGreaterThan(10);
  });

  test("keeps no private metadata, and gives sizes a pattern and the defaults", () => {
    const text = JSON.stringify(schema);
    expect(text).not.toMatch(/"(kind|unit|defaultText)":/);
    const props = (o: unknown) => (o as { properties: Record<string, Record<string, unknown>> }).properties;
    const host = props(props(schema).host);
    expect(host.swap!.default).toBe(0);
    expect(host.ram!.anyOf).toEqual([{ type: "integer", minimum: 0 }, expect.objectContaining({ type: "string" })]);
    const sizePattern = new RegExp((host.ram!.anyOf as { pattern?: string }[])[1]!.pattern!);
    for (const ok of ["512MiB", "4 KiB", "1_000_000", "0x1000", "123B"]) expect(sizePattern.test(ok), ok).toBe(true);
    for (const bad of ["512MB", "1.5GiB", "-1", "lots"]) expect(sizePattern.test(bad), bad).toBe(false);
    const vm = props((props(schema).vms as { items: unknown }).items);
    expect(vm.vcpus).toMatchObject({ default: 1, type: "integer", maximum: MAX_VCPUS });
    expect(vm.mmu).toMatchObject({ default: "ept", enum: ["ept", "npt", "shadow"] });
    const process = props((vm.processes as { items: unknown }).items);
    expect((process.steps as { items: unknown }).items).toMatchObject({ minProperties: 1, maxProperties: 1 });
  });
});

describe("helpers", () => {
  test("Linux's watermarks: min_free_kbytes = sqrt(16 * KiB), clamped to 128..262144 KiB", () => {
    expect(linuxWatermarks(2 * GiB)).toEqual({ min: 5792 * KiB, low: 1972 * 4 * KiB, high: 2496 * 4 * KiB });
    expect(linuxWatermarks(256 * MiB)).toEqual({ min: 2 * MiB, low: 2 * MiB + 512 * KiB, high: 3 * MiB });
    expect(linuxWatermarks(MiB).min).toBe(128 * KiB);
    expect(linuxWatermarks(64 * TiB).min).toBe(256 * MiB);
    // Large hosts: the scale factor (0.1% of RAM) sets the gap.
    const big = linuxWatermarks(TiB);
    expect(big.low - big.min).toBe(Math.floor((TiB / 4096) * 0.001) * 4096);
  });

  test("did you mean: typos, case, separators and synonyms; nothing when nothing is close", () => {
    expect(editDistance("mmuu", "mmu")).toBe(1);
    expect(editDistance("tuoch", "touch")).toBe(1);
    expect(didYouMean("vpcus", ["name", "ram", "vcpus"])).toBe("vcpus");
    expect(didYouMean("write_ratio", ["accesses", "writeRatio"])).toBe("writeRatio");
    expect(didYouMean("Hugetlb-2M", ["4k", "hugetlb-2m"])).toBe("hugetlb-2m");
    expect(didYouMean("memory", ["name", "ram", "vcpus"])).toBe("ram");
    expect(didYouMean("banana", ["name", "ram", "vcpus"])).toBeUndefined();
    expect(didYouMean("x", [])).toBeUndefined();
  });
});

describe("the Scenario type", () => {
  test("is the defaulted output: sizes are numbers, steps and actions are tagged unions with filled defaults", () => {
    expectTypeOf<Scenario["host"]["ram"]>().toEqualTypeOf<number>();
    expectTypeOf<Scenario["host"]["watermarks"]>().toEqualTypeOf<{ min: number; low: number; high: number }>();
    expectTypeOf<Scenario["vms"][number]["vcpus"]>().toEqualTypeOf<number>();
    expectTypeOf<MmuMode>().toEqualTypeOf<"ept" | "npt" | "shadow">();
    expectTypeOf<Scenario["vms"][number]["guest"]["levels"]>().toEqualTypeOf<4 | 5>();
    expectTypeOf<Step["kind"]>().toEqualTypeOf<
      | "touch"
      | "random"
      | "sequential"
      | "zipf"
      | "pointerChase"
      | "phases"
      | "mmapChurn"
      | "processChurn"
      | "trace"
      | "mmap"
      | "munmap"
      | "switch"
      | "phase"
      | "setPte"
      | "setPde"
      | "invlpg"
      | "loadCr3"
      | "exit"
      | "mmapFile"
    >();
    expectTypeOf<Extract<Step, { kind: "phase" }>["name"]>().toEqualTypeOf<string>();
    expectTypeOf<Extract<Step, { kind: "touch" }>["size"]>().toEqualTypeOf<number>();
    expectTypeOf<Extract<Step, { kind: "touch" }>["name"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<Extract<Step, { kind: "sequential" }>["accesses"]>().toEqualTypeOf<number>();
    expectTypeOf<Extract<Step, { kind: "trace" }>["path"]>().toEqualTypeOf<string>();
    expectTypeOf<Extract<Step, { kind: "mmap" }>["hugePage"]>().toEqualTypeOf<boolean>();
    expectTypeOf<TimelineAction["kind"]>().toEqualTypeOf<"madvise" | "balloon" | "migrate" | "dirtyLog">();
    expectTypeOf<Scenario["timeline"][number]["at"]>().toEqualTypeOf<
      { clock: "phase"; phase: string } | { clock: "cycles"; value: number } | { clock: "accesses"; value: number }
    >();
  });
});
