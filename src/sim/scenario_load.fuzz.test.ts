// SPDX-License-Identifier: MIT
// Issue 11 item 5: the scenario loader, fed random text, random documents and valid scenarios
// with one value replaced, returns a scenario or throws a ScenarioError whose every issue has a
// place and a message; never another exception or a hang.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { COST_EVENTS } from "./cost.js";
import { loadScenario, ScenarioError } from "./scenario_load.js";

const costEvents = COST_EVENTS.map((e) => e.name);

/** Loads; returns "ok" or the ScenarioError's issues after checking their shape. Anything else is thrown. */
function load(text: string, fileName = "f.yaml", overrides?: Record<string, unknown>): "ok" | string[] {
  try {
    loadScenario(text, fileName, { costEvents, ...(overrides ? { overrides } : {}) });
    return "ok";
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    expect(e.issues.length).toBeGreaterThan(0);
    for (const i of e.issues) {
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.column).toBeGreaterThanOrEqual(1);
      expect(i.message.length).toBeGreaterThan(5);
    }
    return e.format().split("\n");
  }
}

const VALID = {
  seed: 7,
  host: { ram: "512MiB", swap: "64MiB", thp: "madvise" },
  vms: [
    {
      name: "vm0",
      ram: "256MiB",
      vcpus: 2,
      mmu: "shadow",
      backing: "thp",
      processes: [
        {
          name: "p0",
          steps: [
            { mmap: { name: "heap", size: "4MiB" } },
            { touch: { name: "heap", op: "write" } },
            { random: { name: "heap", accesses: 1000, writeRatio: 0.5 } },
            { sequential: { size: "1MiB", stride: 64 } },
            { mmapChurn: { iterations: 3, size: "64KiB" } },
            { munmap: { name: "heap" } },
          ],
        },
        { name: "p1", vcpu: 1, steps: [{ zipf: { size: "2MiB", accesses: 500 } }] },
      ],
    },
  ],
  timeline: [{ at: { accesses: 100 }, madvise: { vm: "vm0", gpa: 0, size: "1MiB", advice: "PAGEOUT" } }],
};

/** Every path to a value of a document, as key lists. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) for (const [i, x] of v.entries()) out.push(...paths(x, [...at, i]));
  else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function setAt(doc: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(o) && typeof last === "number") o.splice(last, 1);
    else delete o[last];
  } else o[last] = value;
  return copy;
}

const weird = fc.oneof(
  fc.constantFrom(
    undefined,
    null,
    0,
    -1,
    1.5,
    2 ** 53,
    2 ** 53 - 1,
    1e300,
    Number.NaN,
    "",
    "0x",
    "1e9",
    "64TiB",
    "9999999TiB",
    "-4KiB",
    "4 MB",
    "1.5GiB",
    "ept",
    "vm0",
    "heap",
    [],
    {},
    [null],
    { touch: {} },
  ),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.anything({ maxDepth: 2 }),
);

describe("scenario loader under fuzzing (issue 11)", () => {
  test("the valid base scenario loads", () => {
    expect(load(stringify(VALID))).toBe("ok");
  });

  test("random text, as YAML and as JSON", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.boolean(), (text, json) => {
        load(text, json ? "f.json" : "f.yaml");
      }),
      { numRuns: 1000 },
    );
  });

  test("random YAML-ish text made of the format's own words", () => {
    const word = fc.constantFrom(
      ..."host: ram: vms: - name: steps: touch: {size: 1MiB, op: write} [ ] { } , : & * ! | > # \n   0x10 64KiB".split(" "),
      "\n",
      "  ",
      "*a",
      "&a",
      "<<: *a",
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 60 }), (words) => {
        load(words.join(" "));
      }),
      { numRuns: 1000 },
    );
  });

  test("random documents", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), fc.boolean(), (doc, json) => {
        const text = (json ? JSON.stringify(doc) : stringify(doc)) ?? "";
        load(text, json ? "f.json" : "f.yaml");
      }),
      { numRuns: 500 },
    );
  });

  test("the valid scenario with one value replaced or removed: a scenario, or issues at that place", () => {
    const all = paths(VALID).slice(1);
    fc.assert(
      fc.property(fc.constantFrom(...all), weird, (path, value) => {
        const r = load(stringify(setAt(VALID, path, value)));
        if (r !== "ok") expect(r.every((l) => /^f\.yaml:\d+:\d+: /.test(l))).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });

  test("random overrides (as --compare and sweeps give them)", () => {
    const key = fc.oneof(
      fc.constantFrom(
        "vms[0].ram",
        "vms[1].ram",
        "vms[0].processes[9].vcpu",
        "host.swap",
        "cost.tlb_hit",
        "limits.accesses",
        "vms",
        "seed",
      ),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(key, weird, (k, v) => {
        load(stringify(VALID), "f.yaml", { [k]: v });
      }),
      { numRuns: 1000 },
    );
  });

  test("an override never adds a list item (no phantom VM)", () => {
    expect(load(stringify(VALID), "f.yaml", { "vms[1].ram": "1GiB" })).toEqual([
      "f.yaml:1:1: override vms[1].ram: the scenario has no vms[1] (vms[0] to vms[0]); name an item that exists",
    ]);
    expect(load(stringify(VALID), "f.yaml", { "vms[0].processes[2].vcpu": 0 })).toEqual([
      "f.yaml:1:1: override vms[0].processes[2].vcpu: the scenario has no vms[0].processes[2] (vms[0].processes[0] to vms[0].processes[1]); name an item that exists",
    ]);
  });

  test("deep nesting and many aliases end in an error, not a hang or a stack overflow", () => {
    expect(load(`${"[".repeat(5000)}${"]".repeat(5000)}`)).not.toBe("ok");
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 9; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`,
      );
    const t0 = Date.now();
    expect(load(bomb.join("\n"))).not.toBe("ok");
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
