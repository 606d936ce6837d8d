// SPDX-License-Identifier: MIT
import { readFileSync } from "node:fs";
import { gzipSync } from "fflate";
import { describe, expect, test } from "vitest";
import { CHAMPSIM_RECORD_BYTES } from "./champsim.js";
import { AccessBatch, OP_READ, OP_WRITE } from "./stream.js";
import { BufferSource, OP_FETCH, openTrace, TraceError } from "./trace.js";

/** One input_instr record (ChampSim inc/trace_instruction.h): ip, branch bytes, dst/src memory. */
function record(ip: number, src: number[] = [], dst: number[] = [], isBranch = 0, taken = 0): Uint8Array {
  const b = new Uint8Array(CHAMPSIM_RECORD_BYTES);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(ip), true);
  b[8] = isBranch;
  b[9] = taken;
  b[10] = 3; // a destination register, ignored
  for (const [k, a] of dst.entries()) v.setBigUint64(16 + 8 * k, BigInt(a), true);
  for (const [k, a] of src.entries()) v.setBigUint64(32 + 8 * k, BigInt(a), true);
  return b;
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

function readAll(bytes: Uint8Array, name = "t.champsim", batch = 3): { addrs: number[]; ops: number[]; format: string } {
  const t = openTrace(new BufferSource(bytes), name);
  const b = new AccessBatch(batch);
  const addrs: number[] = [];
  const ops: number[] = [];
  while (t.fill(b) > 0)
    for (let i = 0; i < b.n; i++) {
      addrs.push(b.addrs[i]!);
      ops.push(b.ops[i]!);
    }
  return { addrs, ops, format: t.format };
}

const THREE = cat(
  record(0x401000, [0x7ffd_1000, 0x601040], [0x601080]), // a load-op-store: fetch, 2 reads, 1 write
  record(0x401004, [], [], 1, 1), // a taken branch: the fetch alone
  record(0x7f12_3456_7000, [0x5555_5555_9000, 0, 0, 0x601000], [0, 0x7ffd_0ff8]), // gaps: zeros skipped
);

describe("ChampSim traces", () => {
  test("each record is its fetch, a read per source operand, a write per destination operand", () => {
    const r = readAll(THREE);
    expect(r.format).toBe("champsim");
    expect(r.addrs).toEqual([
      0x401000, 0x7ffd_1000, 0x601040, 0x601080, 0x401004, 0x7f12_3456_7000, 0x5555_5555_9000, 0x601000, 0x7ffd_0ff8,
    ]);
    expect(r.ops).toEqual([OP_FETCH, OP_READ, OP_READ, OP_WRITE, OP_FETCH, OP_FETCH, OP_READ, OP_READ, OP_WRITE]);
  });

  test("gzip-compressed reads the same", () => {
    expect(readAll(gzipSync(THREE), "t.champsim.gz", 1024).addrs).toEqual(readAll(THREE).addrs);
  });

  test("a truncated file names the record and its byte offset", () => {
    const cut = THREE.subarray(0, 2 * 64 + 23);
    expect(() => readAll(cut)).toThrow(TraceError);
    expect(() => readAll(cut)).toThrow(
      "t.champsim: truncated record 2 at byte offset 128: the file ends 23 bytes into it (a ChampSim record is 64 bytes); the file was cut short",
    );
    expect(() => readAll(gzipSync(cut), "t.gz")).toThrow("truncated record 2 at byte offset 128");
  });

  test("a corrupt record is an error with its offset, not a wrong access", () => {
    const bad = THREE.slice();
    bad[64 + 8] = 7;
    expect(() => readAll(bad)).toThrow("t.champsim: record 1 at byte offset 64: is_branch 7 / branch_taken 1 (each is 0 or 1)");
    const high = THREE.slice();
    high[128 + 32 + 6] = 0x01; // source_memory[0] at or above 2^48
    expect(() => readAll(high)).toThrow("record 2 at byte offset 128: memory operand at record byte 32 is not a user-space address");
  });

  test("xz input is decoded (xz.test.ts): the first 8 bytes of a stream header alone are a truncated xz stream", () => {
    const xz = new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4]);
    expect(() => readAll(xz, "600.perlbench_s-210B.champsimtrace.xz")).toThrow(
      "the xz stream is truncated at byte offset 8: the file ends inside a stream header",
    );
  });

  test("the fixture: /bin/true's first 20,000 instructions, with the loads and stores Lackey recorded for them", () => {
    const r = readAll(readFileSync(new URL("../../examples/traces/true.champsim.gz", import.meta.url)), "true.champsim.gz", 4096);
    const count = (op: number) => r.ops.filter((o) => o === op).length;
    expect([r.addrs.length, count(OP_FETCH), count(OP_READ), count(OP_WRITE)]).toEqual([23_973, 20_000, 3_783, 190]);
    // The same instructions in the Lackey log it came from: the accesses before the 20,001st fetch.
    const lk = readAll(readFileSync(new URL("../../test/fixtures/true.lackey.gz", import.meta.url)), "true.lackey.gz", 4096);
    let fetches = 0;
    let end = 0;
    while (end < lk.ops.length && !(lk.ops[end] === OP_FETCH && ++fetches > 20_000)) end++;
    const first = lk.ops.slice(0, end);
    expect([first.length, first.filter((o) => o === OP_READ).length, first.filter((o) => o === OP_WRITE).length]).toEqual([
      23_973, 3_783, 190,
    ]);
  });
});
