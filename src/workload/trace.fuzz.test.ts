// SPDX-License-Identifier: MIT
// Issue 11 item 5: the trace readers, fed random bytes, every truncation of a valid trace and
// huge numbers, end in accesses or a TraceError with a message; never another exception or a hang.
import fc from "fast-check";
import { gzipSync } from "fflate";
import { describe, expect, test } from "vitest";
import { AccessBatch, OP_READ, OP_WRITE } from "./stream.js";
import { BufferSource, MvtWriter, OP_FETCH, TraceError, openTrace } from "./trace.js";

/** Reads a whole trace: the access count, or the TraceError's message. Anything else is thrown. */
function drain(bytes: Uint8Array): { count: number } | { error: string } {
  try {
    const t = openTrace(new BufferSource(bytes), "t");
    const b = new AccessBatch(257);
    let n: number;
    let count = 0;
    // Each fill consumes input or ends it, so a bound of one fill per byte (plus one) catches a hang.
    for (let fills = 0; (n = t.fill(b)) > 0; fills++) {
      if (fills > bytes.length + 1) throw new Error("the reader does not advance");
      for (let i = 0; i < n; i++) {
        const a = b.addrs[i]!;
        if (!(Number.isSafeInteger(a) && a >= 0 && a < 2 ** 48)) throw new Error(`address ${a} out of range`);
        if (b.ops[i]! > OP_FETCH) throw new Error(`op ${b.ops[i]}`);
      }
      count += n;
    }
    expect(t.count).toBe(count);
    return { count };
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    expect(e.message.length).toBeGreaterThan(10);
    return { error: e.message };
  }
}

function mvt(accesses: [number, number][]): Uint8Array {
  const parts: Uint8Array[] = [];
  const w = new MvtWriter((c) => parts.push(c), 64);
  for (const [a, op] of accesses) w.write(a, op);
  w.flush();
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const LACKEY = new TextEncoder().encode(
  "==42== Lackey\nI  04016b0,3\n L 1ffefffd78,8\n S 1ffefffd70,8\n M 0404a50,4\n\nI  7fff00001234,2\n",
);
const access = fc.tuple(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.constantFrom(OP_READ, OP_WRITE, OP_FETCH));

describe("trace readers under fuzzing (issue 11)", () => {
  test("random bytes, plain or behind a gzip or memvirt header", () => {
    const prefix = fc.constantFrom(
      new Uint8Array(0),
      new Uint8Array([0x1f, 0x8b]),
      new Uint8Array([0x4d, 0x56, 0x54, 0x52, 1, 0, 0, 0]),
      new Uint8Array([0x4d, 0x56, 0x54, 0x52]),
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 2000 }), (p, body) => {
        drain(new Uint8Array([...p, ...body]));
      }),
      { numRuns: 1500 },
    );
  });

  test("random Lackey-like text: lines of kinds, hex digits, commas and sizes", () => {
    const line = fc.string({ unit: fc.constantFrom(..."IL SM0123456789abcdefABCDEFxX,=\r\t-"), maxLength: 40 });
    fc.assert(
      fc.property(fc.array(line, { maxLength: 50 }), (lines) => {
        drain(new TextEncoder().encode(lines.join("\n")));
      }),
      { numRuns: 1500 },
    );
  });

  test("huge numbers: long hex addresses, long sizes, over-long varints are errors, not wrong addresses", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 2n ** 48n, max: 2n ** 200n }), fc.bigInt({ min: 0n, max: 10n ** 40n }), (addr, size) => {
        const r = drain(new TextEncoder().encode(` L ${addr.toString(16)},${size}\n`));
        return "error" in r && r.error.startsWith("t:1:");
      }),
    );
    // A size of any length is fine; the address decides.
    expect(drain(new TextEncoder().encode(` S 1000,${"9".repeat(500)}\n`))).toEqual({ count: 1 });
    expect(drain(new Uint8Array([0x4d, 0x56, 0x54, 0x52, 1, 0, 0, 0, ...new Array(20).fill(0xff), 0]))).toEqual({
      error: "t: byte offset 8: a record longer than 8 bytes; the file is garbled",
    });
    // 7 bytes of 0xff then 0x7f: 2^56 - 1, beyond every address.
    expect(drain(new Uint8Array([0x4d, 0x56, 0x54, 0x52, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toMatchObject({
      error: expect.stringMatching(/^t: byte offset 8: record decodes to address/),
    });
  });

  test("every truncation of a valid memvirt trace: a prefix of its accesses, or an error at the byte offset", () => {
    fc.assert(
      fc.property(fc.array(access, { minLength: 1, maxLength: 40 }), (accesses) => {
        const whole = mvt(accesses);
        for (let cut = 0; cut <= whole.length; cut++) {
          const r = drain(whole.subarray(0, cut));
          if ("count" in r) {
            if (r.count > accesses.length) return false;
          } else if (!/byte offset|not a Lackey|bad address/.test(r.error)) return false;
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });

  test("every truncation of a gzip trace (Lackey or memvirt) is an error, never fewer accesses", () => {
    fc.assert(
      fc.property(fc.array(access, { minLength: 1, maxLength: 30 }), fc.boolean(), (accesses, lackey) => {
        const gz = gzipSync(lackey ? LACKEY : mvt(accesses));
        const full = drain(gz);
        if (!("count" in full)) return false;
        for (let cut = 0; cut < gz.length; cut++) {
          const r = drain(gz.subarray(0, cut));
          // Two bytes or less cannot be told from a Lackey text; from the magic on it is gzip.
          if (cut > 2 && !("error" in r && /gzip stream is (truncated|corrupt)/.test(r.error))) return false;
        }
        return true;
      }),
      { numRuns: 60 },
    );
  });

  test("every truncation of a Lackey trace: accesses of the whole lines, or an error naming the line", () => {
    const full = drain(LACKEY);
    expect(full).toEqual({ count: 5 });
    for (let cut = 0; cut <= LACKEY.length; cut++) {
      const r = drain(LACKEY.subarray(0, cut));
      if ("count" in r) expect(r.count).toBeLessThanOrEqual(5);
      else expect(r.error).toMatch(/^t:\d+: (not a Lackey access line|bad address or size)/);
    }
  });

  test("a gzip stream with a flipped byte is refused or read whole; never a wrong count silently", () => {
    const body = mvt(Array.from({ length: 500 }, (_, i) => [i * 4096, OP_READ] as [number, number]));
    const gz = gzipSync(body);
    for (let at = 10; at < gz.length; at++) {
      const bad = gz.slice();
      bad[at] = bad[at]! ^ 0x55;
      const r = drain(bad);
      if ("count" in r) expect(r.count).toBe(500);
    }
  });

  test("a source returning a byte at a time (a gzip chunk ending inside a record) reads the same accesses", () => {
    fc.assert(
      fc.property(fc.array(access, { minLength: 1, maxLength: 60 }), (accesses) => {
        const bytes = mvt(accesses);
        let off = 0;
        const oneByte = {
          read(buf: Uint8Array): number {
            if (off >= bytes.length || buf.length === 0) return 0;
            buf[0] = bytes[off++]!;
            return 1;
          },
        };
        const t = openTrace(oneByte, "t");
        const b = new AccessBatch(7);
        const got: number[] = [];
        let n: number;
        while ((n = t.fill(b)) > 0) for (let i = 0; i < n; i++) got.push(b.addrs[i]!);
        expect(got).toEqual(accesses.map(([a]) => a));
      }),
      { numRuns: 200 },
    );
  });
});
