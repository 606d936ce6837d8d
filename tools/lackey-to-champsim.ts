// SPDX-License-Identifier: MIT
// Converts a Valgrind Lackey log into ChampSim's binary trace format (64-byte input_instr
// records, docs/traces.md), for test fixtures: each `I` line starts a record (ip), its loads
// fill source_memory (up to 4), its stores destination_memory (up to 2), a modify both; operands
// beyond those slots are dropped and counted. Registers and branch fields stay 0.
//   npx tsx tools/lackey-to-champsim.ts in.lackey.gz out.champsim.gz [max-instructions]
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { BufferSource, openTrace } from "../src/workload/trace.js";
import { AccessBatch, OP_READ } from "../src/workload/stream.js";

const [inPath, outPath, maxArg] = process.argv.slice(2);
if (!inPath || !outPath) throw new Error("usage: lackey-to-champsim.ts in.lackey[.gz] out.champsim[.gz] [max-instructions]");
const max = maxArg ? Number(maxArg) : Number.POSITIVE_INFINITY;
const t = openTrace(new BufferSource(readFileSync(inPath)), inPath);
const out: Uint8Array[] = [];
let rec: DataView | null = null;
let nSrc = 0;
let nDst = 0;
const stats = { instructions: 0, reads: 0, writes: 0, dropped: 0, beforeFirst: 0 };
const put = (off: number, addr: number) => rec!.setBigUint64(off, BigInt(addr), true);
const b = new AccessBatch(4096);
outer: while (t.fill(b) > 0) {
  for (let i = 0; i < b.n; i++) {
    const addr = b.addrs[i]!;
    const op = b.ops[i]!;
    if (op === 2) {
      if (stats.instructions === max) break outer;
      const bytes = new Uint8Array(64);
      out.push(bytes);
      rec = new DataView(bytes.buffer);
      put(0, addr);
      nSrc = nDst = 0;
      stats.instructions++;
    } else if (rec === null) stats.beforeFirst++;
    else if (op === OP_READ ? nSrc < 4 : nDst < 2) {
      if (op === OP_READ) put(32 + 8 * nSrc++, addr);
      else put(16 + 8 * nDst++, addr);
      stats[op === OP_READ ? "reads" : "writes"]++;
    } else stats.dropped++;
  }
}
const raw = Buffer.concat(out);
writeFileSync(outPath, outPath.endsWith(".gz") ? gzipSync(raw, { level: 9 }) : raw);
console.log(JSON.stringify({ ...stats, accesses: stats.instructions + stats.reads + stats.writes, bytes: raw.length }));
