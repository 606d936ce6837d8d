// SPDX-License-Identifier: MIT
// The xz reader against files made by XZ Utils' own xz (5.4.1): the fixtures decode to exactly the
// bytes xz compressed, and a cut or damaged file is an error naming its byte offset.
import { readFileSync } from "node:fs";
import { gunzipSync } from "fflate";
import { describe, expect, test } from "vitest";
import { AccessBatch, OP_READ, OP_WRITE } from "./stream.js";
import { BufferSource, OP_FETCH, openTrace, TraceError } from "./trace.js";
import { crc32, XzSource } from "./xz.js";

const file = (p: string) => new Uint8Array(readFileSync(new URL(`../../${p}`, import.meta.url)));
/** `xz -c` (xz -6: one block, LZMA2 with an 8 MiB dictionary, CRC64) of the 1,280,000-byte true.champsim. */
const XZ = file("examples/traces/true.champsim.xz");
/** `xz -T2 --block-size=400000 -C crc32`: 4 blocks with their sizes in their headers, CRC32. */
const BLOCKS = file("test/fixtures/true.champsim.blocks.xz");
const PLAIN = gunzipSync(file("examples/traces/true.champsim.gz"));

/** Everything an XzSource gives, read in odd-sized pieces. */
function inflate(bytes: Uint8Array, piece = 40_000): Uint8Array {
  const src = new XzSource(new BufferSource(bytes));
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(piece);
  for (let n = src.read(buf); n > 0; n = src.read(buf)) parts.push(buf.slice(0, n));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** The first offset where two byte arrays differ, or -1 (toEqual on a megabyte takes a minute). */
function differ(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The error an input gives, or "none". */
function failure(bytes: Uint8Array): string {
  try {
    inflate(bytes);
    return "none";
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    return e.message;
  }
}

describe("xz", () => {
  test("the fixtures decode to exactly the bytes xz compressed (1,280,000), one block and four", () => {
    expect(PLAIN.length).toBe(1_280_000);
    expect(differ(inflate(XZ), PLAIN)).toBe(-1);
    expect(differ(inflate(BLOCKS, 4096), PLAIN)).toBe(-1);
  });

  test("concatenated streams, with stream padding between, decode as one (xz -dc of `cat a.xz b.xz`)", () => {
    expect(differ(inflate(cat(XZ, BLOCKS)), cat(PLAIN, PLAIN))).toBe(-1);
    expect(differ(inflate(cat(XZ, new Uint8Array(8), BLOCKS, new Uint8Array(4))), cat(PLAIN, PLAIN))).toBe(-1);
    expect(failure(cat(XZ, new Uint8Array(3)))).toMatch(/corrupt at byte offset 4620: the stream padding is not a multiple of four bytes/);
  });

  test("the ChampSim fixture replays the same accesses from .xz as from .gz: 23,973 (20,000 fetches, 3,783 reads, 190 writes)", () => {
    const ops = (bytes: Uint8Array, name: string) => {
      const t = openTrace(new BufferSource(bytes), name);
      const b = new AccessBatch(4096);
      const out: number[] = [];
      while (t.fill(b) > 0) for (let i = 0; i < b.n; i++) out.push(b.addrs[i]! * 4 + b.ops[i]!);
      expect(t.format).toBe("champsim");
      return out;
    };
    const xz = ops(XZ, "true.champsim.xz");
    expect(differ(xz, ops(file("examples/traces/true.champsim.gz"), "true.champsim.gz"))).toBe(-1);
    expect([xz.length, ...[OP_FETCH, OP_READ, OP_WRITE].map((op) => xz.filter((v) => v % 4 === op).length)]).toEqual([
      23_973, 20_000, 3_783, 190,
    ]);
  });

  test("a truncated file names the byte offset where it ends and what it ends inside", () => {
    expect(failure(XZ.slice(0, 2000))).toBe(
      "the xz stream is truncated at byte offset 2000: the file ends inside an LZMA chunk (it was cut short; copy or download it again, xz -t checks it)",
    );
    expect(failure(XZ.slice(0, XZ.length - 4))).toMatch(
      /^the xz stream is truncated at byte offset 4616: the file ends inside a stream footer/,
    );
    expect(failure(BLOCKS.slice(0, 10))).toMatch(/truncated at byte offset 10: the file ends inside a stream header/);
    // Every cut: an error, never fewer bytes silently.
    for (let cut = 6; cut < BLOCKS.length; cut += 97)
      expect(failure(BLOCKS.slice(0, cut))).toMatch(/^the xz stream is (truncated|corrupt) at byte offset \d+/);
  });

  test("a flipped byte anywhere is an error naming a byte offset, never different bytes silently", () => {
    const flip = (at: number) => {
      const b = XZ.slice();
      b[at] ^= 0x10;
      return failure(b);
    };
    // In the LZMA data of the block (which starts at byte 12, its data at 24).
    expect(flip(1000)).toMatch(
      /^the xz stream is corrupt at byte offset 1113: a match distance of 39727 bytes reaches before the start of the data/,
    );
    expect(flip(30)).toMatch(/^the xz stream is corrupt at byte offset 30: an LZMA chunk's range coder does not start with a zero byte/);
    // In the CRC64 at the end of the block (header 12 + data 4562 + padding 2 = 4576 bytes in).
    expect(flip(4590)).toBe(
      "the xz stream is corrupt at byte offset 4588: the CRC64 of the block at byte offset 12 does not match the 1280000 bytes decoded from it (the file is damaged; copy or download it again, xz -t checks it)",
    );
    for (let at = 0; at < XZ.length; at += 71) expect(flip(at)).toMatch(/^the xz stream is (corrupt|truncated) at byte offset \d+: /);
  });

  test("filters other than LZMA2 and the SHA-256 check are refused with the command that converts them", () => {
    // The block header (12 bytes at offset 12): size, flags, filter ID 0x21 (LZMA2), ...; make it x86 BCJ (0x04).
    const bcj = XZ.slice();
    bcj[14] = 0x04;
    new DataView(bcj.buffer).setUint32(20, crc32(bcj, 12, 20), true);
    expect(failure(bcj)).toMatch(
      /^the xz block at byte offset 12 uses x86 BCJ, which memvirt does not decode .*xz -dc FILE \| xz -T0 > NEW\.xz/,
    );
    const sha = XZ.slice();
    sha[7] = 10;
    new DataView(sha.buffer).setUint32(8, crc32(sha, 6, 8), true);
    expect(failure(sha)).toMatch(/^the xz stream at byte offset 0 uses the SHA-256 integrity check, which memvirt does not verify/);
  });
});
