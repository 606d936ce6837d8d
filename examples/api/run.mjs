// Runs a scenario through the library API (docs/api.md): node examples/api/run.mjs
import { loadScenario, runScenario, translate } from "memvirt";

const scenario = loadScenario(`
host: { ram: 256MiB, swap: 0, thp: never }
vms:
  - { name: vm0, ram: 128MiB, mmu: ept, processes: [{ name: p0, steps: [{ mmap: { name: buf, size: 4MiB } }, { touch: { name: buf, op: write } }] }] }
`, "tiny.yaml");
const kinds = new Map();
const report = await runScenario(scenario, { seed: 1, onEvent: (e) => kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1) });
const vm = report.vms[0];
console.log(`accesses ${report.accesses} exits ${vm.stats.exits} ept_violations ${kinds.get("kvm.exit")} rssBytes ${vm.qemu.rssBytes}`);
console.log(`cold walk references ${translate().references.total}`);
