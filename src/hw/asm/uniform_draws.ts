// SPDX-License-Identifier: MIT
// The `random` stream's draws in wasm (../../workload/stream.ts RandomStream): xoshiro128** as
// ../../workload/prng.ts steps it, the state as four i32 at `state`, three draws an access as
// nextInt(pages), nextU32() and nextFloat() take them. Same numbers, the same doubles from them:
// JS's xoshiro loop runs at a third of this speed, and a hit-dominated run draws 3 an access.

/** n accesses into addrs (f64 gva) and ops (u8, 1 for a write): page, 8-byte aligned word, write if below writeBelow. */
export function fillUniform(state: usize, addrs: usize, ops: usize, n: i32, base: f64, pages: f64, writeBelow: f64): void {
  let a = load<i32>(state, 0);
  let b = load<i32>(state, 4);
  let c = load<i32>(state, 8);
  let d = load<i32>(state, 12);
  for (let i = 0; i < n; i++) {
    let x: u32 = 0;
    let page: f64 = 0;
    let word: u32 = 0;
    for (let k = 0; k < 3; k++) {
      x = <u32>(rotl<i32>(b * 5, 7) * 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl<i32>(d, 11);
      if (k == 0) page = Math.floor((<f64>x / 4294967296.0) * pages);
      else if (k == 1) word = x & 0xff8;
    }
    store<f64>(addrs + (<usize>i << 3), base + page * 4096 + <f64>word);
    store<u8>(ops + <usize>i, <f64>x < writeBelow ? 1 : 0);
  }
  store<i32>(state, a, 0);
  store<i32>(state, b, 4);
  store<i32>(state, c, 8);
  store<i32>(state, d, 12);
}
