// SPDX-License-Identifier: MIT
// Memory-access traces, streamed in constant memory: Valgrind Lackey's text output
// (`valgrind --tool=lackey --trace-mem=yes`), memvirt's compact binary format and ChampSim's
// instruction traces (champsim.ts), each plain, gzip- or xz-compressed (xz.ts). Readers pull bytes from a ByteSource (a file in Node, a Blob in
// the browser) and fill AccessBatches like any other workload.
//
// memvirt trace format, version 1 (".mvt"):
//   header: "MVTR" (4 bytes), version (1 byte, = 1), flags (1 byte, 0), reserved (2 bytes, 0)
//   then one record per access: an unsigned LEB128 varint of zigzag(delta) * 4 + op, where
//   delta = address - previous address (the first delta is from 0) and op is
//   0 read, 1 write, 2 instruction fetch. A record is 1 to 8 bytes; sequential accesses take 1-2.

import { Gunzip } from "fflate";
import { CHAMPSIM_RECORD_BYTES, ChampSimStream } from "./champsim.js";
import { type AccessBatch, type AccessStream, OP_READ, OP_WRITE } from "./stream.js";
import { XzSource } from "./xz.js";

/** Where trace bytes come from: fills `buf` from its start, returns the count (0 at the end). */
export interface ByteSource {
  read(buf: Uint8Array): number;
}

/** A trace that cannot be read: says where (line or byte offset) and why. */
export class TraceError extends Error {}

export const OP_FETCH = 2;
const MAGIC = [0x4d, 0x56, 0x54, 0x52]; // "MVTR"
export const TRACE_HEADER_BYTES = 8;

/**
 * True if a traced address lies where x86-64 Linux (or Valgrind, which records Lackey traces)
 * loads programs and shared libraries, so a page first read there is taken as file-backed
 * text or read-only data on replay: below 4 GiB (non-PIE executables at 0x400000; under
 * Valgrind the program at 0x108000, ld.so at 0x4000000 and libraries above it), the PIE range
 * around ELF_ET_DYN_BASE (0x555555554000, with ASLR up to 0x56xxxxxxxxxx), and the mmap area
 * below the stack where ld.so maps libraries (0x7fxxxxxxxxxx).
 */
export function looksLikeProgramImage(addr: number): boolean {
  return addr < 2 ** 32 || (addr >= 0x550000000000 && addr < 0x580000000000) || (addr >= 0x7f0000000000 && addr < 0x800000000000);
}

/** A ByteSource over bytes in memory (tests, the browser after a file is read). */
export class BufferSource implements ByteSource {
  private off = 0;
  constructor(private readonly bytes: Uint8Array) {}
  read(buf: Uint8Array): number {
    const n = Math.min(buf.length, this.bytes.length - this.off);
    buf.set(this.bytes.subarray(this.off, this.off + n));
    this.off += n;
    return n;
  }
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/**
 * Decompresses a gzip ByteSource on the fly (fflate's streaming inflate), holding one chunk at a
 * time. At the end it checks the last member's trailer (CRC-32 and length), which fflate does not,
 * so a truncated or garbled file is an error rather than fewer accesses.
 */
export class GunzipSource implements ByteSource {
  private readonly inflate: Gunzip;
  private readonly inBuf = new Uint8Array(64 * 1024);
  private pending: Uint8Array[] = [];
  private pendingOff = 0;
  private ended = false;
  /** Compressed bytes read so far, and the last 8 of them (the trailer, once the input ends). */
  private rawBytes = 0;
  private readonly tail = new Uint8Array(8);
  /** CRC-32 (pre-inverted) and length of the current member's output. */
  private crc = -1;
  private outBytes = 0;
  private member = 0;

  constructor(private readonly src: ByteSource) {
    this.inflate = new Gunzip((chunk) => {
      if (chunk.length === 0) return;
      let c = this.crc;
      for (let i = 0; i < chunk.length; i++) c = CRC_TABLE[(c ^ chunk[i]!) & 0xff]! ^ (c >>> 8);
      this.crc = c;
      this.outBytes += chunk.length;
      this.pending.push(chunk);
    });
    this.inflate.onmember = (offset) => {
      this.check(offset);
      this.member = offset;
      this.crc = -1;
      this.outBytes = 0;
    };
  }

  /** Checks the trailer of the member that ends at raw byte `end` (only the last 8 raw bytes are kept, so at the end of input). */
  private check(end: number): void {
    if (end !== this.rawBytes) return;
    const t = this.tail;
    const at = end - 8;
    if (end - this.member < 18)
      throw new TraceError(`the gzip stream is truncated at byte offset ${end} (a gzip member is at least 18 bytes)`);
    const crc = (t[0]! | (t[1]! << 8) | (t[2]! << 16) | (t[3]! << 24)) >>> 0;
    const size = (t[4]! | (t[5]! << 8) | (t[6]! << 16) | (t[7]! << 24)) >>> 0;
    if (size !== this.outBytes % 2 ** 32 || crc !== ~this.crc >>> 0)
      throw new TraceError(
        `the gzip stream is truncated or corrupt: the trailer at byte offset ${at} does not match the ${this.outBytes} bytes inflated (the file was cut short or damaged; copy or record it again)`,
      );
  }

  read(buf: Uint8Array): number {
    while (this.pending.length === 0 && !this.ended) {
      const n = this.src.read(this.inBuf);
      try {
        if (n === 0) {
          this.inflate.push(new Uint8Array(0), true);
          this.ended = true;
        } else {
          const chunk = this.inBuf.slice(0, n);
          if (n >= 8) this.tail.set(chunk.subarray(n - 8));
          else {
            this.tail.copyWithin(0, n);
            this.tail.set(chunk, 8 - n);
          }
          this.rawBytes += n;
          this.inflate.push(chunk, false);
        }
      } catch (e) {
        if (e instanceof TraceError) throw e;
        throw new TraceError(`the gzip stream is corrupt or truncated at byte offset ${this.rawBytes} (${(e as Error).message})`);
      }
      if (this.ended) this.check(this.rawBytes);
    }
    let out = 0;
    while (out < buf.length && this.pending.length > 0) {
      const head = this.pending[0]!;
      const take = Math.min(buf.length - out, head.length - this.pendingOff);
      buf.set(head.subarray(this.pendingOff, this.pendingOff + take), out);
      out += take;
      this.pendingOff += take;
      if (this.pendingOff === head.length) {
        this.pending.shift();
        this.pendingOff = 0;
      }
    }
    return out;
  }
}

/** A source that keeps the first bytes it read, so the format can be sniffed and the bytes replayed. */
class PeekSource implements ByteSource {
  private head: Uint8Array;
  private headOff = 0;
  constructor(
    private readonly src: ByteSource,
    want: number,
  ) {
    const b = new Uint8Array(want);
    let n = 0;
    while (n < want) {
      const got = src.read(b.subarray(n));
      if (got === 0) break;
      n += got;
    }
    this.head = b.subarray(0, n);
  }
  get peeked(): Uint8Array {
    return this.head;
  }
  read(buf: Uint8Array): number {
    if (this.headOff < this.head.length) {
      const n = Math.min(buf.length, this.head.length - this.headOff);
      buf.set(this.head.subarray(this.headOff, this.headOff + n));
      this.headOff += n;
      return n;
    }
    return this.src.read(buf);
  }
}

export type TraceFormat = "lackey" | "mvt" | "champsim";

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/**
 * Opens a trace of any format, gzip, xz or plain, by its first bytes: "MVTR" is memvirt's format; a
 * NUL byte in the first 64 is ChampSim's binary records (an address below 2^48 has two zero
 * top bytes; a Lackey log is text); else Lackey. Its ops are OP_READ, OP_WRITE and OP_FETCH.
 */
export function openTrace(src: ByteSource, name: string): TraceStream {
  let s = new PeekSource(src, 6);
  const z = s.peeked;
  if (z.length === 6 && XZ_MAGIC.every((m, i) => z[i] === m)) s = new PeekSource(new XzSource(s), CHAMPSIM_RECORD_BYTES);
  else if (z.length >= 2 && z[0] === 0x1f && z[1] === 0x8b) s = new PeekSource(new GunzipSource(s), CHAMPSIM_RECORD_BYTES);
  else s = new PeekSource(s, CHAMPSIM_RECORD_BYTES);
  const p = s.peeked;
  if (p.length >= 4 && MAGIC.every((m, i) => p[i] === m)) return new MvtStream(s, name);
  if (p.includes(0)) return new ChampSimStream(s, name);
  return new LackeyStream(s, name);
}

/** An access stream read from a trace; `total` is unknown (-1) until the end. */
export interface TraceStream extends AccessStream {
  readonly format: TraceFormat;
  /** Accesses read so far. */
  readonly count: number;
  /** Lackey log lines (starting "==") and blank lines skipped. */
  readonly skipped: number;
}

const CHUNK = 64 * 1024;

/**
 * Lackey's `--trace-mem=yes` output: "I  addr,size" (instruction fetch), " L addr,size" (load),
 * " S addr,size" (store), " M addr,size" (modify: a load and a store, counted as one write).
 * Valgrind's own "==pid==" lines and blank lines are skipped.
 */
export class LackeyStream implements TraceStream {
  readonly format = "lackey" as const;
  readonly total = -1;
  count = 0;
  skipped = 0;
  private readonly buf = new Uint8Array(CHUNK);
  private len = 0;
  private pos = 0;
  private line = 0;
  private eof = false;

  constructor(
    private readonly src: ByteSource,
    private readonly name: string,
  ) {}

  /** Makes sure a whole line (or the end) is in the buffer from pos; returns the index of its '\n' or len at EOF. */
  private lineEnd(): number {
    for (;;) {
      for (let i = this.pos; i < this.len; i++) if (this.buf[i] === 10) return i;
      if (this.eof) return this.len;
      // Move the partial line to the front and read more.
      this.buf.copyWithin(0, this.pos, this.len);
      this.len -= this.pos;
      this.pos = 0;
      if (this.len === this.buf.length)
        throw new TraceError(`${this.name}:${this.line + 1}: line longer than ${CHUNK} bytes; not a Lackey trace`);
      const n = this.src.read(this.buf.subarray(this.len));
      if (n === 0) this.eof = true;
      this.len += n;
    }
  }

  fill(b: AccessBatch): number {
    let n = 0;
    const buf = this.buf;
    while (n < b.capacity) {
      if (this.pos >= this.len && this.eof) break;
      const end = this.lineEnd();
      if (end === this.pos && this.eof && this.pos >= this.len) break;
      this.line++;
      const start = this.pos;
      this.pos = end + 1;
      let e = end;
      if (e > start && buf[e - 1] === 13) e--; // CRLF
      if (e === start || (buf[start] === 61 && buf[start + 1] === 61)) {
        this.skipped++;
        continue;
      }
      // Kind: "I " at column 0, or " L", " S", " M".
      let op: number;
      let i: number;
      const c0 = buf[start]!;
      if (c0 === 73 /* I */) {
        op = OP_FETCH;
        i = start + 1;
      } else if (c0 === 32 && (buf[start + 1] === 76 || buf[start + 1] === 83 || buf[start + 1] === 77)) {
        op = buf[start + 1] === 76 ? OP_READ : OP_WRITE;
        i = start + 2;
      } else {
        throw new TraceError(
          `${this.name}:${this.line}: not a Lackey access line: "${latin1(buf, start, Math.min(e, start + 60))}" (expected "I  addr,size", " L addr,size", " S addr,size" or " M addr,size")`,
        );
      }
      while (i < e && buf[i] === 32) i++;
      let addr = 0;
      let digits = 0;
      for (; i < e; i++) {
        const c = buf[i]!;
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d < 0) break;
        addr = addr * 16 + d;
        digits++;
      }
      if (digits === 0 || digits > 16 || buf[i] !== 44 /* , */ || i + 1 >= e) {
        throw new TraceError(
          `${this.name}:${this.line}: bad address or size in "${latin1(buf, start, Math.min(e, start + 60))}" (expected hex address, a comma and a decimal size)`,
        );
      }
      for (i++; i < e; i++) {
        const c = buf[i]!;
        if (c < 48 || c > 57)
          throw new TraceError(`${this.name}:${this.line}: bad size in "${latin1(buf, start, Math.min(e, start + 60))}"`);
      }
      if (addr >= 2 ** 48)
        throw new TraceError(`${this.name}:${this.line}: address 0x${addr.toString(16)} is not a user-space address of 4-level paging`);
      b.addrs[n] = addr;
      b.ops[n] = op;
      n++;
      this.count++;
    }
    return (b.n = n);
  }
}

/** memvirt's binary trace format (see the header comment). */
export class MvtStream implements TraceStream {
  readonly format = "mvt" as const;
  readonly total = -1;
  count = 0;
  readonly skipped = 0;
  private readonly buf = new Uint8Array(CHUNK);
  private len = 0;
  private pos = 0;
  /** Byte offset in the (uncompressed) trace of buf[0]. */
  private base = 0;
  private eof = false;
  private prev = 0;

  constructor(
    private readonly src: ByteSource,
    private readonly name: string,
  ) {
    const h = new Uint8Array(TRACE_HEADER_BYTES);
    let got = 0;
    while (got < h.length) {
      const n = src.read(h.subarray(got));
      if (n === 0) break;
      got += n;
    }
    if (got < TRACE_HEADER_BYTES)
      throw new TraceError(`${name}: truncated header at byte offset ${got} (a memvirt trace starts with 8 header bytes)`);
    if (h[4] !== 1)
      throw new TraceError(`${name}: byte offset 4: trace format version ${h[4]} is not supported (this memvirt reads version 1)`);
    this.base = TRACE_HEADER_BYTES;
  }

  private refill(): void {
    this.buf.copyWithin(0, this.pos, this.len);
    this.base += this.pos;
    this.len -= this.pos;
    this.pos = 0;
    const n = this.src.read(this.buf.subarray(this.len));
    if (n === 0) this.eof = true;
    this.len += n;
  }

  fill(b: AccessBatch): number {
    let n = 0;
    while (n < b.capacity) {
      // A source may return less than asked (a gzip chunk ending inside a record): read until a whole record fits.
      while (this.len - this.pos < 10 && !this.eof) this.refill();
      if (this.pos >= this.len) break;
      // LEB128, up to 8 bytes (56 bits): numbers, not BigInt.
      let v = 0;
      let mul = 1;
      const at = this.base + this.pos;
      for (let k = 0; ; k++) {
        if (this.pos >= this.len)
          throw new TraceError(`${this.name}: truncated record at byte offset ${at} (the file ends inside a varint)`);
        if (k === 8) throw new TraceError(`${this.name}: byte offset ${at}: a record longer than 8 bytes; the file is garbled`);
        const c = this.buf[this.pos++]!;
        v += (c & 0x7f) * mul;
        mul *= 128;
        if (c < 0x80) break;
      }
      const op = v % 4;
      const z = Math.floor(v / 4);
      const delta = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      const addr = this.prev + delta;
      if (op === 3 || addr < 0 || addr >= 2 ** 48)
        throw new TraceError(
          `${this.name}: byte offset ${at}: record decodes to ${op === 3 ? "an unknown operation" : `address ${addr}`}; the file is garbled`,
        );
      this.prev = addr;
      b.addrs[n] = addr;
      b.ops[n] = op;
      n++;
      this.count++;
    }
    return (b.n = n);
  }
}

/** Encodes accesses in the memvirt format, chunk by chunk (constant memory). */
export class MvtWriter {
  private prev = 0;
  private readonly out: Uint8Array;
  private pos = 0;
  count = 0;

  constructor(
    private readonly sink: (bytes: Uint8Array) => void,
    chunk = CHUNK,
  ) {
    this.out = new Uint8Array(chunk);
    this.out.set([...MAGIC, 1, 0, 0, 0]);
    this.pos = TRACE_HEADER_BYTES;
  }

  /** op: OP_READ, OP_WRITE or OP_FETCH. */
  write(addr: number, op: number): void {
    if (this.pos > this.out.length - 10) this.flush();
    const delta = addr - this.prev;
    this.prev = addr;
    const z = delta >= 0 ? delta * 2 : -delta * 2 - 1;
    let v = z * 4 + op;
    while (v >= 0x80) {
      this.out[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.out[this.pos++] = v;
    this.count++;
  }

  flush(): void {
    if (this.pos > 0) this.sink(this.out.slice(0, this.pos));
    this.pos = 0;
  }
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]!);
  return s;
}
