// SPDX-License-Identifier: MIT
// LZMA2, the filter inside .xz blocks, decoded as xz-embedded's xz_dec_lzma2.c and liblzma's
// lzma_decoder.c / lzma2_decoder.c do: a range decoder, the LZMA literal / match / rep model and
// LZMA2's chunk headers. Output goes to a circular dictionary that the reader (xz.ts) drains
// after each run(), so memory is the dictionary (8 MiB for xz -6) whatever the file's length.

import { type XzInput, xzCorrupt } from "./xz_input.js";

// Probability tables in one array (liblzma lzma_decoder.c's struct, flattened).
const IS_MATCH = 0; // [12 states][16 pos states]
const IS_REP = 192;
const IS_REP_G0 = 204;
const IS_REP_G1 = 216;
const IS_REP_G2 = 228;
const IS_REP0_LONG = 240; // [12][16]
const DIST_SLOT = 432; // [4 len states][64]
const DIST_SPECIAL = 688; // 114: distances 4..127 below the align bits
const DIST_ALIGN = 802; // 16
const LEN_MATCH = 818; // a length coder: choice, choice2, low[16][8], mid[16][8], high[256]
const LEN_REP = 1332;
const LITERAL = 1846; // 0x300 per (lc + lp) context
const PROBS = LITERAL + 0x300 * 16;

const COPY = 1;
const LZMA = 2;

export class Lzma2Decoder {
  /** Circular dictionary; run() writes dict[start, pos), which the caller hands out before the next run(). */
  dict = new Uint8Array(0);
  private size = 0;
  pos = 0;
  start = 0;
  /** Bytes of history since the dictionary reset (at most size): distances must stay below it. */
  private full = 0;

  private readonly probs = new Uint16Array(PROBS);
  private lc = 0;
  private lpMask = 0;
  private pbMask = 0;
  private state = 0;
  private rep0 = 0;
  private rep1 = 0;
  private rep2 = 0;
  private rep3 = 0;
  /** Bytes of the current match not yet copied (the dictionary filled up mid-match). */
  private len = 0;
  private range = 0;
  private code = 0;

  private kind = 0;
  /** Uncompressed bytes left in the current chunk, and the file offset where its compressed data ends. */
  private chunkLeft = 0;
  private chunkEnd = 0;
  private needDictReset = true;
  private needProps = true;

  constructor(private readonly inp: XzInput) {}

  /** Starts a block whose filter has this dictionary size (bytes, rounded to 16: pos & pbMask needs it). */
  reset(dictBytes: number): void {
    const size = Math.ceil(dictBytes / 4096) * 4096;
    if (this.dict.length < size) this.dict = new Uint8Array(size);
    this.size = size;
    this.pos = this.start = this.full = 0;
    this.chunkLeft = 0;
    this.needDictReset = this.needProps = true;
  }

  /** Decodes up to the end of the current chunk or of the dictionary buffer; false at the LZMA2 end marker. */
  run(): boolean {
    if (this.pos === this.size) this.pos = 0;
    while (this.chunkLeft === 0) if (!this.chunkHeader()) return false;
    this.start = this.pos;
    const limit = Math.min(this.size, this.pos + this.chunkLeft);
    if (this.kind === COPY) this.copy(limit);
    else this.lzma(limit);
    this.chunkLeft -= this.pos - this.start;
    if (this.full < this.pos) this.full = this.pos;
    if (this.chunkLeft === 0 && this.kind === LZMA) this.endChunk();
    return true;
  }

  /** The range coder's last byte is read by a final normalisation (xz-embedded lzma_main's rc_normalize). */
  private endChunk(): void {
    if ((this.range & 0xff000000) === 0) {
      this.range <<= 8;
      this.code = (this.code << 8) | this.next();
    }
    if (this.len !== 0 || this.inp.offset !== this.chunkEnd || this.code !== 0)
      throw xzCorrupt(this.inp.offset, "an LZMA chunk does not end where its header says");
  }

  /** Reads one LZMA2 control byte and its header (liblzma lzma2_decoder.c, SEQ_CONTROL .. SEQ_PROPERTIES). */
  private chunkHeader(): boolean {
    const inp = this.inp;
    const at = inp.offset;
    const c = inp.byte("an LZMA2 chunk header");
    if (c === 0) return false;
    if (c >= 0xe0 || c === 1) {
      this.needProps = true;
      this.needDictReset = false;
      this.pos = this.start = this.full = 0;
    } else if (this.needDictReset) throw xzCorrupt(at, "the first LZMA2 chunk does not reset the dictionary");
    if (c < 0x80) {
      if (c > 2) throw xzCorrupt(at, `LZMA2 control byte 0x${c.toString(16)} is not defined`);
      this.kind = COPY;
      this.chunkLeft = inp.byte("an LZMA2 chunk header") * 256 + inp.byte("an LZMA2 chunk header") + 1;
      return true;
    }
    const u = (c & 0x1f) * 65536 + inp.byte("an LZMA2 chunk header") * 256 + inp.byte("an LZMA2 chunk header") + 1;
    const compressed = inp.byte("an LZMA2 chunk header") * 256 + inp.byte("an LZMA2 chunk header") + 1;
    if (c >= 0xc0) {
      this.props(inp.offset, inp.byte("an LZMA2 chunk header"));
      this.needProps = false;
    } else if (this.needProps) throw xzCorrupt(at, "an LZMA chunk without properties after a dictionary reset");
    if (c >= 0xa0) this.resetState();
    this.kind = LZMA;
    this.chunkLeft = u;
    this.chunkEnd = inp.offset + compressed;
    if (inp.byte("an LZMA chunk") !== 0) throw xzCorrupt(inp.offset - 1, "an LZMA chunk's range coder does not start with a zero byte");
    this.range = -1; // 0xffffffff: range and code are uint32 held in int32s
    this.code = 0;
    for (let i = 0; i < 4; i++) this.code = (this.code << 8) | this.next();
    return true;
  }

  /** lc, lp, pb from one byte: (pb * 5 + lp) * 9 + lc, with lc + lp <= 4 in LZMA2. */
  private props(at: number, p: number): void {
    const lc = p % 9;
    const lp = Math.floor(p / 9) % 5;
    const pb = Math.floor(p / 45);
    if (pb > 4 || lc + lp > 4) throw xzCorrupt(at, `LZMA properties byte ${p} is invalid (lc + lp above 4 or pb above 4)`);
    this.lc = lc;
    this.lpMask = (1 << lp) - 1;
    this.pbMask = (1 << pb) - 1;
  }

  private resetState(): void {
    this.probs.fill(1024);
    this.state = this.rep0 = this.rep1 = this.rep2 = this.rep3 = this.len = 0;
  }

  /** An uncompressed chunk: its bytes go to the dictionary as they are. */
  private copy(limit: number): void {
    const inp = this.inp;
    while (this.pos < limit) {
      if (inp.pos === inp.len && !inp.fill()) throw inp.truncated("an uncompressed LZMA2 chunk");
      const n = Math.min(limit - this.pos, inp.len - inp.pos);
      this.dict.set(inp.buf.subarray(inp.pos, inp.pos + n), this.pos);
      inp.pos += n;
      this.pos += n;
    }
  }

  private next(): number {
    const inp = this.inp;
    if (inp.pos === inp.len && !inp.fill()) throw inp.truncated("an LZMA chunk");
    if (inp.base + inp.pos >= this.chunkEnd) throw xzCorrupt(inp.base + inp.pos, "LZMA data runs past the end of its chunk");
    return inp.buf[inp.pos++]!;
  }

  /** Refills the drained input buffer for the hot loop (reading resumes at 0); returns how far it may read. */
  private refill(ip: number): number {
    const inp = this.inp;
    inp.pos = ip;
    if (inp.base + ip >= this.chunkEnd) throw xzCorrupt(inp.base + ip, "LZMA data runs past the end of its chunk");
    if (!inp.fill()) throw inp.truncated("an LZMA chunk");
    return Math.min(inp.len, this.chunkEnd - inp.base);
  }

  /**
   * lzma_main: literals and matches until the dictionary reaches limit. One function with the
   * range decoder's bit (rc_bit: 11-bit probabilities, shift 5) written out at each use, state in
   * locals: 4-5x faster than a method per bit.
   */
  private lzma(limit: number): void {
    const d = this.dict;
    const size = this.size;
    const probs = this.probs;
    const inp = this.inp;
    const lc = this.lc;
    const lpMask = this.lpMask;
    const pbMask = this.pbMask;
    const buf = inp.buf; // refilled in place
    let ip = inp.pos;
    let il = Math.min(inp.len, this.chunkEnd - inp.base);
    let range = this.range;
    let code = this.code;
    let state = this.state;
    let rep0 = this.rep0;
    let rep1 = this.rep1;
    let rep2 = this.rep2;
    let rep3 = this.rep3;
    let len = this.len;
    let pos = this.pos;
    let full = this.full;
    let i = 0;
    let p = 0;
    let bound = 0;
    for (;;) {
      if (len > 0) {
        // dict_repeat: copy the match from rep0 + 1 back, as far as limit.
        const n = Math.min(len, limit - pos);
        let src = pos - rep0 - 1;
        if (src < 0) src += size;
        if (n >= 32 && src + n <= size && (src > pos || pos - src >= n)) {
          // No wrap and no overlap with what it writes: a memmove.
          d.copyWithin(pos, src, src + n);
          pos += n;
        } else
          for (let k = 0; k < n; k++) {
            d[pos++] = d[src++]!;
            if (src === size) src = 0;
          }
        len -= n;
        if (full < pos) full = pos;
      }
      if (pos >= limit) break;
      const posState = pos & pbMask;
      if ((range & 0xff000000) === 0) {
        if (ip === il) {
          il = this.refill(ip);
          ip = 0;
        }
        range <<= 8;
        code = (code << 8) | buf[ip++]!;
      }
      i = IS_MATCH + state * 16 + posState;
      p = probs[i]!;
      bound = Math.imul(range >>> 11, p);
      if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
        range = bound;
        probs[i] = p + ((2048 - p) >>> 5);
        // A literal, coded with the previous byte's top lc bits and the position's low lp bits.
        const prev = full === 0 && pos === 0 ? 0 : d[(pos === 0 ? size : pos) - 1]!;
        const base = LITERAL + 0x300 * (((pos & lpMask) << lc) + (prev >> (8 - lc)));
        let sym = 1;
        if (state < 7) {
          while (sym < 0x100) {
            if ((range & 0xff000000) === 0) {
              if (ip === il) {
                il = this.refill(ip);
                ip = 0;
              }
              range <<= 8;
              code = (code << 8) | buf[ip++]!;
            }
            i = base + sym;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              sym <<= 1;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              sym = (sym << 1) | 1;
            }
          }
        } else {
          // After a match: the byte at rep0 steers the probabilities until the first differing bit.
          let src = pos - rep0 - 1;
          if (src < 0) src += size;
          let m = d[src]!;
          let offset = 0x100;
          while (sym < 0x100) {
            m <<= 1;
            const mbit = m & offset;
            if ((range & 0xff000000) === 0) {
              if (ip === il) {
                il = this.refill(ip);
                ip = 0;
              }
              range <<= 8;
              code = (code << 8) | buf[ip++]!;
            }
            i = base + offset + mbit + sym;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              sym <<= 1;
              offset &= ~mbit;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              sym = (sym << 1) | 1;
              offset &= mbit;
            }
          }
        }
        d[pos++] = sym;
        if (full < pos) full = pos;
        state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
        continue;
      } else {
        range = (range - bound) | 0;
        code = (code - bound) | 0;
        probs[i] = p - (p >>> 5);
      }
      let lenBase = LEN_MATCH;
      let isMatch = false;
      if ((range & 0xff000000) === 0) {
        if (ip === il) {
          il = this.refill(ip);
          ip = 0;
        }
        range <<= 8;
        code = (code << 8) | buf[ip++]!;
      }
      i = IS_REP + state;
      p = probs[i]!;
      bound = Math.imul(range >>> 11, p);
      if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
        range = bound;
        probs[i] = p + ((2048 - p) >>> 5);
        state = state < 7 ? 7 : 10;
        rep3 = rep2;
        rep2 = rep1;
        rep1 = rep0;
        isMatch = true;
      } else {
        range = (range - bound) | 0;
        code = (code - bound) | 0;
        probs[i] = p - (p >>> 5);
        lenBase = LEN_REP;
        if ((range & 0xff000000) === 0) {
          if (ip === il) {
            il = this.refill(ip);
            ip = 0;
          }
          range <<= 8;
          code = (code << 8) | buf[ip++]!;
        }
        i = IS_REP_G0 + state;
        p = probs[i]!;
        bound = Math.imul(range >>> 11, p);
        if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
          range = bound;
          probs[i] = p + ((2048 - p) >>> 5);
          if ((range & 0xff000000) === 0) {
            if (ip === il) {
              il = this.refill(ip);
              ip = 0;
            }
            range <<= 8;
            code = (code << 8) | buf[ip++]!;
          }
          i = IS_REP0_LONG + state * 16 + posState;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            // A "short rep": one byte from rep0.
            state = state < 7 ? 9 : 11;
            lenBase = -1;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
          }
        } else {
          range = (range - bound) | 0;
          code = (code - bound) | 0;
          probs[i] = p - (p >>> 5);
          let dist = 0;
          if ((range & 0xff000000) === 0) {
            if (ip === il) {
              il = this.refill(ip);
              ip = 0;
            }
            range <<= 8;
            code = (code << 8) | buf[ip++]!;
          }
          i = IS_REP_G1 + state;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            dist = rep1;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
            if ((range & 0xff000000) === 0) {
              if (ip === il) {
                il = this.refill(ip);
                ip = 0;
              }
              range <<= 8;
              code = (code << 8) | buf[ip++]!;
            }
            i = IS_REP_G2 + state;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              dist = rep2;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              dist = rep3;
              rep3 = rep2;
            }
            rep2 = rep1;
          }
          rep1 = rep0;
          rep0 = dist;
        }
        if (lenBase >= 0) state = state < 7 ? 8 : 11;
      }
      if (lenBase < 0) len = 1;
      else {
        // The length coder: 2-9 (low), 10-17 (mid) or 18-273 (high).
        let t = lenBase + 258;
        let bits = 8;
        len = 18;
        if ((range & 0xff000000) === 0) {
          if (ip === il) {
            il = this.refill(ip);
            ip = 0;
          }
          range <<= 8;
          code = (code << 8) | buf[ip++]!;
        }
        i = lenBase;
        p = probs[i]!;
        bound = Math.imul(range >>> 11, p);
        if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
          range = bound;
          probs[i] = p + ((2048 - p) >>> 5);
          t = lenBase + 2 + posState * 8;
          bits = 3;
          len = 2;
        } else {
          range = (range - bound) | 0;
          code = (code - bound) | 0;
          probs[i] = p - (p >>> 5);
          if ((range & 0xff000000) === 0) {
            if (ip === il) {
              il = this.refill(ip);
              ip = 0;
            }
            range <<= 8;
            code = (code << 8) | buf[ip++]!;
          }
          i = lenBase + 1;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            t = lenBase + 130 + posState * 8;
            bits = 3;
            len = 10;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
          }
        }
        let sym = 1;
        const top = 1 << bits;
        while (sym < top) {
          if ((range & 0xff000000) === 0) {
            if (ip === il) {
              il = this.refill(ip);
              ip = 0;
            }
            range <<= 8;
            code = (code << 8) | buf[ip++]!;
          }
          i = t + sym;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            sym <<= 1;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
            sym = (sym << 1) | 1;
          }
        }
        len += sym - top;
      }
      if (isMatch) {
        // A new distance: a 6-bit slot, then reverse-coded bits or direct bits and 4 align bits.
        let slot = 1;
        const t = DIST_SLOT + (len < 6 ? len - 2 : 3) * 64;
        while (slot < 64) {
          if ((range & 0xff000000) === 0) {
            if (ip === il) {
              il = this.refill(ip);
              ip = 0;
            }
            range <<= 8;
            code = (code << 8) | buf[ip++]!;
          }
          i = t + slot;
          p = probs[i]!;
          bound = Math.imul(range >>> 11, p);
          if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
            range = bound;
            probs[i] = p + ((2048 - p) >>> 5);
            slot <<= 1;
          } else {
            range = (range - bound) | 0;
            code = (code - bound) | 0;
            probs[i] = p - (p >>> 5);
            slot = (slot << 1) | 1;
          }
        }
        slot -= 64;
        if (slot < 4) rep0 = slot;
        else {
          let bits = (slot >>> 1) - 1;
          rep0 = (2 | (slot & 1)) << bits; // uint32 bits in an int32, like range and code
          let rbase = DIST_SPECIAL + rep0 - slot - 1;
          if (slot >= 14) {
            // rc_direct: bits with probability one half.
            let direct = 0;
            for (let k = bits - 4; k > 0; k--) {
              if ((range & 0xff000000) === 0) {
                if (ip === il) {
                  il = this.refill(ip);
                  ip = 0;
                }
                range <<= 8;
                code = (code << 8) | buf[ip++]!;
              }
              range >>>= 1;
              if ((code ^ 0x80000000) >= (range ^ 0x80000000)) {
                code = (code - range) | 0;
                direct = (direct << 1) | 1;
              } else direct <<= 1;
            }
            rep0 |= direct << 4;
            rbase = DIST_ALIGN;
            bits = 4;
          }
          let sym = 1;
          for (let k = 0; k < bits; k++) {
            if ((range & 0xff000000) === 0) {
              if (ip === il) {
                il = this.refill(ip);
                ip = 0;
              }
              range <<= 8;
              code = (code << 8) | buf[ip++]!;
            }
            i = rbase + sym;
            p = probs[i]!;
            bound = Math.imul(range >>> 11, p);
            if ((code ^ 0x80000000) < (bound ^ 0x80000000)) {
              range = bound;
              probs[i] = p + ((2048 - p) >>> 5);
              sym <<= 1;
            } else {
              range = (range - bound) | 0;
              code = (code - bound) | 0;
              probs[i] = p - (p >>> 5);
              sym = (sym << 1) | 1;
              rep0 |= 1 << k;
            }
          }
        }
      }
      if (rep0 < 0 || rep0 >= full) {
        inp.pos = ip;
        throw xzCorrupt(inp.offset, `a match distance of ${(rep0 >>> 0) + 1} bytes reaches before the start of the data`);
      }
    }
    inp.pos = ip;
    this.range = range;
    this.code = code;
    this.state = state;
    this.rep0 = rep0;
    this.rep1 = rep1;
    this.rep2 = rep2;
    this.rep3 = rep3;
    this.len = len;
    this.pos = pos;
    this.full = full;
  }
}
