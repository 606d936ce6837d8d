// SPDX-License-Identifier: MIT
// ../phys_mem.ts as the core sees it: the table-slot index (one i32 per frame, 1 + slot, 0 for
// a frame that is not a table) and the table word pool (1024 words per slot), both in this
// module's memory, which PhysMem owns (../wasm_memory.ts). JS moves the pool when it makes
// room below it and tells the core with setPhysMem().

let slotsBase: usize = 0;
let nframes: u64 = 0;
let wordsBase: usize = 0;

export function setPhysMem(slots: usize, frames: u32, words: usize): void {
  slotsBase = slots;
  nframes = frames;
  wordsBase = words;
}

/** Word offset of entry `idx` of the table in host frame `hpfn`, or -1 if that frame holds no table. */
@inline export function entryOff(hpfn: i64, idx: i32): i32 {
  if (<u64>hpfn >= nframes) return -1;
  const slot = load<i32>(slotsBase + (<usize>hpfn << 2)) - 1;
  return slot < 0 ? -1 : (slot << 10) | (idx << 1);
}

/** Both words of the entry at word offset `off` (lo in the low half). */
@inline export function readEntry(off: i32): u64 {
  return load<u64>(wordsBase + (<usize>off << 2));
}

@inline export function writeLo(off: i32, lo: u32): void {
  store<u32>(wordsBase + (<usize>off << 2), lo);
}

@inline export function readLo(off: i32): u32 {
  return load<u32>(wordsBase + (<usize>off << 2));
}

/** Whether a leaf's A/D update changes the entry (and so writes and counts). */
@inline export function adChanged(newLo: u32, lo: u32): bool {
  return newLo != lo;
}
