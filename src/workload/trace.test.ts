// SPDX-License-Identifier: MIT
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { gzipSync } from "fflate";
import { describe, expect, test } from "vitest";
import { AccessBatch, OP_READ, OP_WRITE } from "./stream.js";
import { BufferSource, MvtWriter, OP_FETCH, TraceError, openTrace } from "./trace.js";

function readAll(bytes: Uint8Array, name = "t") {
  const t = openTrace(new BufferSource(bytes), name);
  const b = new AccessBatch(1000);
  const addrs: number[] = [];
  const ops: number[] = [];
  let n: number;
  while ((n = t.fill(b)) > 0) {
    for (let i = 0; i < n; i++) {
      addrs.push(b.addrs[i]!);
      ops.push(b.ops[i]!);
    }
  }
  return { t, addrs, ops };
}

function encode(accesses: [number, number][]): Uint8Array {
  const parts: Uint8Array[] = [];
  const w = new MvtWriter((c) => parts.push(c), 64);
  for (const [a, op] of accesses) w.write(a, op);
  w.flush();
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

describe("Lackey traces", () => {
  test("a real recorded trace (valgrind --tool=lackey --trace-mem=yes /bin/true) parses to its 167,418 accesses", () => {
    // test/fixtures/true.lackey.gz: `grep -c '^ [LSM] \|^I '` on the uncompressed log gives 167418.
    const { t, addrs } = readAll(readFileSync(new URL("../../test/fixtures/true.lackey.gz", import.meta.url)), "true.lackey.gz");
    expect(t.format).toBe("lackey");
    expect(addrs.length).toBe(167418);
    expect(t.skipped).toBeGreaterThan(10); // Valgrind's "==pid==" lines
  });

  test("kinds: I is a fetch, L a read, S and M writes; log and blank lines are skipped", () => {
    const text = "==1== Lackey\nI  04001000,3\n L 7ff000010,8\n S 7ff000018,4\n M 0601040,8\n\n==1== done\n";
    const { addrs, ops, t } = readAll(new TextEncoder().encode(text));
    expect(addrs).toEqual([0x04001000, 0x7ff000010, 0x7ff000018, 0x0601040]);
    expect(ops).toEqual([OP_FETCH, OP_READ, OP_WRITE, OP_WRITE]);
    expect(t.skipped).toBe(3);
  });

  test("a malformed line stops with its line number and the reason", () => {
    const bad = "I  04001000,3\n L 7ff000010,8\n X garbage\n";
    expect(() => readAll(new TextEncoder().encode(bad), "bad.lackey")).toThrow(/bad\.lackey:3: not a Lackey access line/);
    expect(() => readAll(new TextEncoder().encode(" L zz,8\n"), "b2")).toThrow(/b2:1: bad address/);
    expect(() => readAll(new TextEncoder().encode(" L 1000\n"), "b3")).toThrow(TraceError);
  });
});

describe("memvirt binary traces", () => {
  test("round-trip: any sequence of user addresses and ops comes back exactly, plain and gzipped", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 47 - 1 }), fc.constantFrom(OP_READ, OP_WRITE, OP_FETCH)), { maxLength: 300 }),
        (acc) => {
          const bytes = encode(acc);
          for (const b of [bytes, gzipSync(bytes)]) {
            const { addrs, ops, t } = readAll(b);
            expect(t.format).toBe("mvt");
            expect(addrs).toEqual(acc.map((a) => a[0]));
            expect(ops).toEqual(acc.map((a) => a[1]));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  test("sequential accesses take one or two bytes each", () => {
    const acc: [number, number][] = [];
    for (let i = 0; i < 1000; i++) acc.push([0x7f0000000000 + i * 8, OP_READ]);
    expect(encode(acc).length).toBeLessThan(8 + 1000 * 2 + 8);
  });

  test("a truncated file fails with the byte offset", () => {
    const bytes = encode([
      [0x7f0000000000, OP_READ],
      [0x10, OP_WRITE],
    ]);
    expect(() => readAll(bytes.slice(0, bytes.length - 1), "cut.mvt")).toThrow(/cut\.mvt: truncated record at byte offset \d+/);
    expect(() => readAll(bytes.slice(0, 5), "hdr.mvt")).toThrow(/truncated header at byte offset 5/);
    const v2 = bytes.slice();
    v2[4] = 2;
    expect(() => readAll(v2, "v2.mvt")).toThrow(/byte offset 4: trace format version 2/);
  });

  test("a garbled gzip stream fails clearly", () => {
    const acc: [number, number][] = [];
    for (let i = 0; i < 5000; i++) acc.push([(i * 7919 * 4096) % 2 ** 40, i % 3 === 0 ? OP_WRITE : OP_READ]);
    const gz = gzipSync(encode(acc));
    expect(() => readAll(gz.slice(0, gz.length >> 1), "cut.gz")).toThrow(/gzip stream is corrupt or truncated/);
  });

  test("the shipped example traces open and hold the counts recorded with them", () => {
    const counts: Record<string, number> = { "sort.mvt.gz": 1218598, "gzip.mvt.gz": 1166583 };
    for (const [f, want] of Object.entries(counts)) {
      const { addrs } = readAll(readFileSync(new URL(`../../examples/traces/${f}`, import.meta.url)), f);
      expect(addrs.length).toBe(want);
    }
  });
});
