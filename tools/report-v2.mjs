#!/usr/bin/env node
// A report of format 1 (`"memvirt": "1.0.0"`, no `format`) in format 2, whose keys state their
// units (docs/report.md, "Format 2"): `node tools/report-v2.mjs old.json > new.json`. Values are
// not touched, only keys renamed in place. `--check old.json new.json` exits 1 unless the
// converted old report is the new one byte for byte (JSON.stringify with 2 spaces).
import { readFileSync } from "node:fs";

/** Old key -> new key, by where the key is (array steps left out). */
export const RENAMES = {
  "": { overhead: "overheadRatio" },
  host: { ram: "ramBytes", free: "freeBytes", swapUsed: "swapUsedBytes" },
  vms: { overhead: "overheadRatio" },
  "vms.qemu": { rss: "rssBytes", rssZeroPage: "rssZeroPageBytes" },
  series: { rss: "rssBytes", free: "freeBytes", swapUsed: "swapUsedBytes", guestFree: "guestFreeBytes", balloon: "balloonBytes" },
  phases: { overhead: "overheadRatio" },
  "phases.vms": { overhead: "overheadRatio" },
  "phases.vms.qemu": { rss: "rssBytes", rssZeroPage: "rssZeroPageBytes" },
  migrations: {
    bandwidth: "bandwidthBytesPerSecond",
    downtimeLimit: "downtimeLimitSeconds",
    totalTime: "totalSeconds",
    downtime: "downtimeSeconds",
    pagesSent: "sentPages",
    ratioToRam: "sentToRamRatio",
    throttledTime: "throttledSeconds",
    maxThrottle: "maxThrottlePercent",
    postcopyFaultLatency: "postcopyFaultLatencySeconds",
    postcopyFaultLatencyMax: "postcopyFaultLatencyMaxSeconds",
  },
  "migrations.iterations": {
    pagesSent: "sentPages",
    dirtyRate: "dirtyPagesPerSecond",
    remaining: "remainingBytes",
    throttle: "throttlePercent",
  },
};

function rename(v, path) {
  if (Array.isArray(v)) return v.map((x) => rename(x, path));
  if (v === null || typeof v !== "object") return v;
  const map = RENAMES[path] ?? {};
  const out = {};
  for (const [k, x] of Object.entries(v)) out[map[k] ?? k] = rename(x, path === "" ? k : `${path}.${k}`);
  return out;
}

/** A format-1 run report (or `run --compare --json` file) in format 2. */
export function toFormat2(r) {
  if (r.memvirt === "compare") return { ...r, variants: r.variants.map((v) => ({ ...v, report: toFormat2(v.report) })) };
  if (r.format !== undefined) throw new Error(`already format ${r.format}`);
  return { format: 2, ...rename(r, ""), memvirt: "2.0.0" };
}

const args = process.argv.slice(2);
process.on("uncaughtException", (e) => {
  console.error(`report-v2: ${e.message}`);
  process.exit(2);
});
const read = (f) => JSON.parse(readFileSync(f, "utf8"));
if (args[0] === "--check" && args.length === 3) {
  const want = read(args[2]);
  const ok = JSON.stringify(toFormat2(read(args[1])), null, 2) === JSON.stringify(want, null, 2);
  const leaves = (v) => (v !== null && typeof v === "object" ? Object.values(v).reduce((a, x) => a + leaves(x), 0) : 1);
  console.log(`${args[1]} -> ${args[2]}: ${leaves(want)} values, ${ok ? "every value equal" : "DIFFERENT"}`);
  process.exit(ok ? 0 : 1);
} else if (args.length === 1) {
  process.stdout.write(`${JSON.stringify(toFormat2(read(args[0])), null, 2)}\n`);
} else if (args.length > 0) {
  console.error("usage: node tools/report-v2.mjs old.json > new.json | --check old.json new.json");
  process.exit(2);
}
