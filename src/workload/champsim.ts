// SPDX-License-Identifier: MIT
// ChampSim's binary instruction traces (the DPC-3 / CRC-2 SPEC and GAP trace sets), read as a
// stream of accesses: per 64-byte record (ChampSim inc/trace_instruction.h, struct input_instr,
// little-endian) the instruction fetch at ip, a read per non-zero source_memory, a write per
// non-zero destination_memory. Registers and branch outcomes are not used.
//   0 ip u64 | 8 is_branch u8 | 9 branch_taken u8 | 10 destination_registers[2] u8
//   12 source_registers[4] u8 | 16 destination_memory[2] u64 | 32 source_memory[4] u64

import type { ByteSource, TraceStream } from "./trace.js";
import { TraceError } from "./trace.js";
import { type AccessBatch, OP_READ, OP_WRITE } from "./stream.js";

export const CHAMPSIM_RECORD_BYTES = 64;
const OP_FETCH = 2;
const RECORDS_PER_READ = 1024;
const DST_OFF = 16;
const SRC_OFF = 32;

export class ChampSimStream implements TraceStream {
  readonly format = "champsim" as const;
  readonly total = -1;
  count = 0;
  readonly skipped = 0;
  /** Records (instructions) read so far. */
  records = 0;
  private readonly buf = new Uint8Array(CHAMPSIM_RECORD_BYTES * RECORDS_PER_READ);
  private len = 0;
  private pos = 0;
  private eof = false;
  /** The accesses of the current record not yet handed out (a record makes up to 7). */
  private readonly pendAddr = new Float64Array(7);
  private readonly pendOp = new Uint8Array(7);
  private pendN = 0;
  private pendAt = 0;

  constructor(
    private readonly src: ByteSource,
    private readonly name: string,
  ) {}

  /** Makes sure a whole record is buffered at pos; false at a clean end. */
  private haveRecord(): boolean {
    while (this.len - this.pos < CHAMPSIM_RECORD_BYTES && !this.eof) {
      this.buf.copyWithin(0, this.pos, this.len);
      this.len -= this.pos;
      this.pos = 0;
      const n = this.src.read(this.buf.subarray(this.len));
      if (n === 0) this.eof = true;
      this.len += n;
    }
    const left = this.len - this.pos;
    if (left === 0) return false;
    if (left < CHAMPSIM_RECORD_BYTES)
      throw new TraceError(
        `${this.name}: truncated record ${this.records} at byte offset ${this.records * CHAMPSIM_RECORD_BYTES}: the file ends ${left} bytes into it (a ChampSim record is 64 bytes); the file was cut short`,
      );
    return true;
  }

  /** The u64 at byte `at` of the buffer as a number; -1 if it is at or above 2^48 (not a 4-level user address). */
  private u64(at: number): number {
    const b = this.buf;
    const lo = (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
    const hi = (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0;
    return hi >= 0x10000 ? -1 : hi * 0x1_0000_0000 + lo;
  }

  private bad(what: string): never {
    throw new TraceError(
      `${this.name}: record ${this.records} at byte offset ${this.records * CHAMPSIM_RECORD_BYTES}: ${what}; the file is corrupt or not a ChampSim trace`,
    );
  }

  /** Decodes the record at pos into the pending accesses. */
  private decode(): void {
    const p = this.pos;
    const b = this.buf;
    if (b[p + 8]! > 1 || b[p + 9]! > 1) this.bad(`is_branch ${b[p + 8]} / branch_taken ${b[p + 9]} (each is 0 or 1)`);
    const ip = this.u64(p);
    if (ip <= 0) this.bad(ip === 0 ? "ip is 0" : "ip is not a user-space address of 4-level paging");
    let n = 0;
    this.pendAddr[n] = ip;
    this.pendOp[n++] = OP_FETCH;
    for (let k = 0; k < 4; k++) n = this.operand(p + SRC_OFF + 8 * k, OP_READ, n);
    for (let k = 0; k < 2; k++) n = this.operand(p + DST_OFF + 8 * k, OP_WRITE, n);
    this.pendN = n;
    this.pendAt = 0;
    this.pos += CHAMPSIM_RECORD_BYTES;
    this.records++;
  }

  private operand(at: number, op: number, n: number): number {
    const a = this.u64(at);
    if (a === 0) return n;
    if (a < 0) this.bad(`memory operand at record byte ${at - this.pos} is not a user-space address of 4-level paging`);
    this.pendAddr[n] = a;
    this.pendOp[n] = op;
    return n + 1;
  }

  fill(b: AccessBatch): number {
    let n = 0;
    while (n < b.capacity) {
      if (this.pendAt === this.pendN) {
        if (!this.haveRecord()) break;
        this.decode();
      }
      b.addrs[n] = this.pendAddr[this.pendAt]!;
      b.ops[n] = this.pendOp[this.pendAt++]!;
      n++;
      this.count++;
    }
    return (b.n = n);
  }
}
