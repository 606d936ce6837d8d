// SPDX-License-Identifier: MIT
// Replaying a long trace keeps memory flat: the reader holds one chunk, the engine one batch.
import { describe, expect, test } from "vitest";
import { OP_READ, OP_WRITE } from "../workload/stream.js";
import { type ByteSource, MvtWriter } from "../workload/trace.js";
import { Engine } from "./engine.js";
import { loadScenario } from "./scenario_load.js";

/** A memvirt trace of `total` accesses made as it is read: a 16 MiB working set swept in 64-byte steps, every 4th a write. */
class GeneratedTrace implements ByteSource {
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  private made = 0;
  private readonly w = new MvtWriter((b) => this.chunks.push(b), 16 * 1024);
  constructor(private readonly total: number) {}
  read(buf: Uint8Array): number {
    while (this.chunks.length === 0 && this.made < this.total) {
      const end = Math.min(this.total, this.made + 4096);
      for (; this.made < end; this.made++)
        this.w.write(0x10000000 + ((this.made * 64) % (16 * 2 ** 20)), this.made % 4 === 0 ? OP_WRITE : OP_READ);
      if (this.made === this.total) this.w.flush();
    }
    if (this.chunks.length === 0) return 0;
    const c = this.chunks[0]!;
    const n = Math.min(buf.length, c.length - this.head);
    buf.set(c.subarray(this.head, this.head + n));
    this.head += n;
    if (this.head === c.length) {
      this.chunks.shift();
      this.head = 0;
    }
    return n;
  }
}

describe("trace replay", () => {
  test("10 million accesses replay with flat memory (heap growth after warm-up under 16 MiB)", () => {
    const total = 10_000_000;
    const s = loadScenario(
      "host: {ram: 512MiB, swap: 0, thp: never}\nvms:\n  - name: vm0\n    ram: 256MiB\n    processes:\n      - name: p0\n        steps:\n          - trace: {file: generated.mvt}\n",
      "t.yaml",
    );
    const heap: number[] = [];
    let next = 0;
    const e = new Engine(s, {
      sampleEvery: 0,
      openFile: () => new GeneratedTrace(total),
      onProgress: (done) => {
        if (done >= next) {
          heap.push(process.memoryUsage().heapUsed);
          next += 500_000;
        }
      },
    });
    const r = e.run();
    expect(r.accesses).toBe(total);
    expect(r.check.dataErrors).toBe(0);
    // After the first million (the guest's 4,096 pages are mapped by then), the heap stays level.
    const after = heap.slice(2);
    const growth = Math.max(...after) - Math.min(...after);
    expect(growth).toBeLessThan(16 * 2 ** 20);
  });
});
