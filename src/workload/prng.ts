// SPDX-License-Identifier: MIT
// The only source of randomness: a seeded xoshiro128** (Blackman and Vigna), 32-bit
// integer arithmetic only, so Node and the browser give the same stream for the same seed.

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 expands the seed into the four words of state.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next() | 0;
    this.b = next() | 0;
    this.c = next() | 0;
    this.d = next() | 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    // The state stays int32 (small integers to V8, no boxed doubles); only the result is unsigned.
    const b = this.b;
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    const c = this.c ^ this.a;
    const d = this.d ^ b;
    this.b = b ^ c;
    this.a ^= d;
    this.c = c ^ t;
    this.d = rotl(d, 11);
    return result;
  }

  /** The state into s[0..4), for a generator stepped elsewhere (the wasm core's uniform draws); setState() takes it back. */
  getState(s: Int32Array): void {
    s[0] = this.a;
    s[1] = this.b;
    s[2] = this.c;
    s[3] = this.d;
  }

  setState(s: Int32Array): void {
    this.a = s[0]!;
    this.b = s[1]!;
    this.c = s[2]!;
    this.d = s[3]!;
  }

  /** A uniform float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** A uniform integer in [0, n), n up to 2^53 (two draws above 2^32). */
  nextInt(n: number): number {
    if (n <= 2 ** 32) return Math.floor(this.nextFloat() * n);
    return Math.floor(((this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53) * n);
  }

  /** A new generator derived from this one and a label (per process, per VM), independent of call order elsewhere. */
  static derive(seed: number, label: string): Prng {
    let h = seed >>> 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Prng(h);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
