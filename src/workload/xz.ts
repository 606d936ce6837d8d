// SPDX-License-Identifier: MIT
// The .xz container (The .xz File Format 1.2.0, tukaani.org): streams of a header, blocks of
// LZMA2 data (lzma2.ts) each with its CRC32 or CRC64 check, an index and a footer, optionally
// concatenated with zero padding between (xz -T2 writes several blocks, `cat a.xz b.xz` several
// streams). Decoded as a synchronous ByteSource in constant memory, like GunzipSource. Only the
// LZMA2 filter is decoded (no BCJ or delta filter; xz uses them only when asked) and the
// SHA-256 check is refused rather than skipped: the public ChampSim traces use xz's defaults.

import { Lzma2Decoder } from "./lzma2.js";
import { XzInput, xzCorrupt } from "./xz_input.js";
import type { ByteSource } from "./trace.js";
import { TraceError } from "./trace.js";

const CRC32 = new Int32Array(256);
// CRC-64/XZ (ECMA-182, reflected), as two 32-bit halves: numbers, not BigInt.
const CRC64_LO = new Int32Array(256);
const CRC64_HI = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  let lo = n;
  let hi = 0;
  for (let k = 0; k < 8; k++) {
    c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    const odd = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi >>>= 1;
    if (odd) {
      lo ^= 0xd7870f42;
      hi ^= 0xc96c5795;
    }
  }
  CRC32[n] = c;
  CRC64_LO[n] = lo;
  CRC64_HI[n] = hi;
}

export function crc32(b: Uint8Array, from = 0, to = b.length, crc = 0): number {
  let c = ~crc;
  for (let i = from; i < to; i++) c = CRC32[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

const CHECK_NONE = 0;
const CHECK_CRC32 = 1;
const CHECK_CRC64 = 4;
const CHECK_NAMES: Record<number, string> = { 0: "no check", 1: "CRC32", 4: "CRC64", 10: "SHA-256" };
const FILTER_NAMES: Record<number, string> = {
  3: "delta",
  4: "x86 BCJ",
  5: "PowerPC BCJ",
  6: "IA-64 BCJ",
  7: "ARM BCJ",
  8: "ARM-Thumb BCJ",
  9: "SPARC BCJ",
  10: "ARM64 BCJ",
};
const LZMA2_ID = 0x21;
/** Dictionaries above this are refused (xz -9 uses 64 MiB; the format allows 4 GiB). */
const MAX_DICT = 1024 * 1024 * 1024;
const MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

const START = 0;
const NEXT = 1;
const BLOCK = 2;
const PADDING = 3;

export class XzSource implements ByteSource {
  private readonly inp: XzInput;
  private readonly lz: Lzma2Decoder;
  private phase = START;
  /** Dictionary index of the first decoded byte not yet handed out. */
  private out = 0;
  private flags = 0;
  private check = 0;
  private checkBytes = 0;
  private crcA = 0;
  private crcB = 0;
  // The current block: where it starts, its header's sizes (-1 if absent), bytes out so far.
  private blockAt = 0;
  private headerBytes = 0;
  private dataAt = 0;
  private wantCompressed = -1;
  private wantUncompressed = -1;
  private blockOut = 0;
  // This stream's blocks, to compare with its index.
  private blocks = 0;
  private unpaddedSum = 0;
  private uncompressedSum = 0;

  constructor(src: ByteSource) {
    this.inp = new XzInput(src);
    this.lz = new Lzma2Decoder(this.inp);
  }

  read(buf: Uint8Array): number {
    let n = 0;
    while (n < buf.length) {
      const avail = this.lz.pos - this.out;
      if (avail > 0) {
        const take = Math.min(avail, buf.length - n);
        buf.set(this.lz.dict.subarray(this.out, this.out + take), n);
        this.sum(this.out, this.out + take);
        this.out += take;
        n += take;
      } else if (!this.more()) break;
    }
    return n;
  }

  /** Decodes the next piece of output, reading container structures on the way; false at the end. */
  private more(): boolean {
    for (;;) {
      if (this.phase === BLOCK) {
        if (this.lz.run()) {
          this.out = this.lz.start;
          return true;
        }
        this.endBlock();
        this.phase = NEXT;
      } else if (this.phase === NEXT) {
        const at = this.inp.offset;
        const b = this.inp.byte("a block header or the index");
        if (b === 0) {
          this.footer(this.index(at));
          this.phase = PADDING;
        } else {
          this.blockHeader(at, b);
          this.phase = BLOCK;
        }
      } else if (this.phase === PADDING) {
        if (!this.padding()) return false;
        this.streamHeader();
        this.phase = NEXT;
      } else {
        this.streamHeader();
        this.phase = NEXT;
      }
    }
  }

  /** Reads n bytes (n <= 1024) into a scratch buffer. */
  private bytes(n: number, what: string): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.inp.byte(what);
    return b;
  }

  private streamHeader(): void {
    const at = this.inp.offset;
    const h = this.bytes(12, "a stream header");
    if (!MAGIC.every((m, i) => h[i] === m)) throw xzCorrupt(at, "no xz stream header here");
    if (crc32(h, 6, 8) !== u32(h, 8)) throw xzCorrupt(at + 8, "the stream header's CRC32 does not match");
    if (h[6] !== 0 || h[7]! > 15) throw xzCorrupt(at + 6, `stream flags 0x${h[6]!.toString(16)}${h[7]!.toString(16)} are not defined`);
    this.flags = h[7]!;
    this.check = h[7]!;
    if (this.check !== CHECK_NONE && this.check !== CHECK_CRC32 && this.check !== CHECK_CRC64)
      throw new TraceError(
        `the xz stream at byte offset ${at} uses the ${CHECK_NAMES[this.check] ?? `type ${this.check}`} integrity check, which memvirt does not verify; recompress it with xz's default CRC64 (xz -dc FILE | xz -T0 > NEW.xz) or as gzip`,
      );
    this.checkBytes = this.check === CHECK_NONE ? 0 : this.check === CHECK_CRC32 ? 4 : 8;
    this.blocks = this.unpaddedSum = this.uncompressedSum = 0;
  }

  /** A variable-length integer (up to 9 bytes of 7 bits, least significant first). */
  private vli(next: () => number, at: () => number): number {
    let v = 0;
    for (let i = 0; i < 9; i++) {
      const c = next();
      v += (c & 0x7f) * 2 ** (7 * i);
      if (c < 0x80) {
        if (c === 0 && i > 0) break;
        return v;
      }
    }
    throw xzCorrupt(at(), "a size field is not a valid variable-length integer");
  }

  private blockHeader(at: number, sizeByte: number): void {
    const size = (sizeByte + 1) * 4;
    const h = new Uint8Array(size);
    h[0] = sizeByte;
    h.set(this.bytes(size - 1, "a block header"), 1);
    if (crc32(h, 0, size - 4) !== u32(h, size - 4)) throw xzCorrupt(at, "the block header's CRC32 does not match");
    const flags = h[1]!;
    if (flags & 0x3c) throw xzCorrupt(at + 1, "reserved block flags are set");
    let p = 2;
    const next = () => {
      if (p >= size - 4) throw xzCorrupt(at, "the block header is shorter than its fields");
      return h[p++]!;
    };
    const off = () => at + p;
    this.wantCompressed = flags & 0x40 ? this.vli(next, off) : -1;
    this.wantUncompressed = flags & 0x80 ? this.vli(next, off) : -1;
    const filters = (flags & 3) + 1;
    const id = this.vli(next, off);
    const propBytes = this.vli(next, off);
    if (filters > 1 || id !== LZMA2_ID) {
      const name = FILTER_NAMES[id] ?? `filter 0x${id.toString(16)}`;
      throw new TraceError(
        `the xz block at byte offset ${at} uses ${filters > 1 ? `${filters} filters (${name} first)` : name}, which memvirt does not decode (it reads xz's default LZMA2 alone); recompress it (xz -dc FILE | xz -T0 > NEW.xz) or as gzip`,
      );
    }
    const dictByte = propBytes === 1 ? next() : 64;
    if (dictByte > 40) throw xzCorrupt(at + p - 1, "the LZMA2 dictionary size is not valid");
    while (p < size - 4) if (h[p++] !== 0) throw xzCorrupt(at + p - 1, "the block header's padding is not zero");
    const dict = dictByte === 40 ? 2 ** 32 - 1 : (2 + (dictByte & 1)) * 2 ** (Math.floor(dictByte / 2) + 11);
    // A block smaller than its dictionary (a small file) needs only its own size.
    const need = this.wantUncompressed >= 0 ? Math.min(dict, Math.max(this.wantUncompressed, 1)) : dict;
    if (need > MAX_DICT)
      throw new TraceError(
        `the xz block at byte offset ${at} needs a ${Math.round(dict / 2 ** 20)} MiB dictionary, above memvirt's ${MAX_DICT / 2 ** 20} MiB limit; recompress it with a smaller one (xz -dc FILE | xz -9 > NEW.xz) or as gzip`,
      );
    this.lz.reset(need);
    this.out = 0;
    this.blockAt = at;
    this.headerBytes = size;
    this.dataAt = this.inp.offset;
    this.blockOut = 0;
    this.crcA = this.crcB = -1;
  }

  /** Updates the block's check over dict[from, to) as it is handed out. */
  private sum(from: number, to: number): void {
    this.blockOut += to - from;
    const d = this.lz.dict;
    if (this.check === CHECK_CRC64) {
      let lo = this.crcA;
      let hi = this.crcB;
      for (let i = from; i < to; i++) {
        const k = (lo ^ d[i]!) & 0xff;
        lo = ((lo >>> 8) | (hi << 24)) ^ CRC64_LO[k]!;
        hi = (hi >>> 8) ^ CRC64_HI[k]!;
      }
      this.crcA = lo;
      this.crcB = hi;
    } else if (this.check === CHECK_CRC32) {
      let c = this.crcA;
      for (let i = from; i < to; i++) c = CRC32[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
      this.crcA = c;
    }
  }

  private endBlock(): void {
    const inp = this.inp;
    const compressed = inp.offset - this.dataAt;
    if (
      (this.wantCompressed >= 0 && compressed !== this.wantCompressed) ||
      (this.wantUncompressed >= 0 && this.blockOut !== this.wantUncompressed)
    )
      throw xzCorrupt(this.blockAt, `the block's sizes (${compressed} bytes in, ${this.blockOut} out) differ from its header's`);
    for (let i = compressed; i % 4 !== 0; i++)
      if (inp.byte("a block's padding") !== 0) throw xzCorrupt(inp.offset - 1, "the block padding is not zero");
    const at = inp.offset;
    const c = this.bytes(this.checkBytes, "a block's check");
    const ok =
      this.check === CHECK_CRC64
        ? u32(c, 0) === ~this.crcA >>> 0 && u32(c, 4) === ~this.crcB >>> 0
        : this.check === CHECK_CRC32
          ? u32(c, 0) === ~this.crcA >>> 0
          : true;
    if (!ok)
      throw xzCorrupt(
        at,
        `the ${CHECK_NAMES[this.check]} of the block at byte offset ${this.blockAt} does not match the ${this.blockOut} bytes decoded from it`,
      );
    this.blocks++;
    this.unpaddedSum += this.headerBytes + compressed + this.checkBytes;
    this.uncompressedSum += this.blockOut;
  }

  /** The index (its indicator byte at `at` already read) must list the blocks just read; returns its size. */
  private index(at: number): number {
    const inp = this.inp;
    let crc = crc32(new Uint8Array(1));
    const one = new Uint8Array(1);
    const next = () => {
      one[0] = inp.byte("the index");
      crc = crc32(one, 0, 1, crc);
      return one[0];
    };
    const off = () => inp.offset;
    const count = this.vli(next, off);
    let unpadded = 0;
    let uncompressed = 0;
    for (let i = 0; i < count && i <= this.blocks; i++) {
      unpadded += this.vli(next, off);
      uncompressed += this.vli(next, off);
    }
    if (count !== this.blocks || unpadded !== this.unpaddedSum || uncompressed !== this.uncompressedSum)
      throw xzCorrupt(
        at,
        `the index lists ${count} blocks of ${uncompressed} bytes; the stream holds ${this.blocks} of ${this.uncompressedSum}`,
      );
    while ((inp.offset - at) % 4 !== 0) if (next() !== 0) throw xzCorrupt(inp.offset - 1, "the index padding is not zero");
    const c = this.bytes(4, "the index");
    if (u32(c, 0) !== crc) throw xzCorrupt(inp.offset - 4, "the index's CRC32 does not match");
    return inp.offset - at;
  }

  private footer(indexBytes: number): void {
    const at = this.inp.offset;
    const f = this.bytes(12, "a stream footer");
    if (f[10] !== 0x59 || f[11] !== 0x5a) throw xzCorrupt(at + 10, "no stream footer magic (YZ) here");
    if (crc32(f, 4, 10) !== u32(f, 0)) throw xzCorrupt(at, "the stream footer's CRC32 does not match");
    if ((u32(f, 4) + 1) * 4 !== indexBytes) throw xzCorrupt(at + 4, "the stream footer's index size does not match the index");
    if (f[8] !== 0 || f[9] !== this.flags) throw xzCorrupt(at + 8, "the stream footer's flags differ from the header's");
  }

  /** Zero bytes after a stream, in fours: true if another stream follows, false at the end of the file. */
  private padding(): boolean {
    const inp = this.inp;
    const at = inp.offset;
    for (;;) {
      const b = inp.tryByte();
      if (b === 0) continue;
      if ((inp.offset - (b < 0 ? 0 : 1) - at) % 4 !== 0) throw xzCorrupt(at, "the stream padding is not a multiple of four bytes");
      if (b < 0) return false;
      inp.pos--;
      return true;
    }
  }
}
