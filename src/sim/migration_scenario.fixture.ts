// SPDX-License-Identifier: MIT
// The migration tests' guest: one process writes its working set, writes at random over it, then
// reads it back, while the timeline migrates the VM from its 256th access. Tests only.

export interface PrecopyGuest {
  /** The `migrate:` action's keys after `vm: vm0` ("bandwidth: 1MiB, downtimeLimit: 30"). */
  migrate: string;
  ram?: string;
  workingSet?: string;
  accesses?: number;
  writeRatio?: number;
  /** cost.data_access in cycles: the model time each access takes (300,000 = 100 µs). */
  dataAccess?: number;
  /** The VM's `dirtyLog:` value in flow YAML; none when absent. */
  dirtyLog?: string;
}

export function precopyScenario(g: PrecopyGuest): string {
  return `
seed: 7
host: {ram: 512MiB, swap: 0, thp: never}
cost: {data_access: ${g.dataAccess ?? 300000}}
vms:
  - name: vm0
    ram: ${g.ram ?? "16MiB"}
    vcpus: 1
    mmu: ept${g.dirtyLog === undefined ? "" : `\n    dirtyLog: ${g.dirtyLog}`}
    processes:
      - name: p0
        steps:
          - mmap: {name: ws, size: ${g.workingSet ?? "2MiB"}}
          - touch: {name: ws, op: write}
          - random: {name: ws, accesses: ${g.accesses ?? 60000}, writeRatio: ${g.writeRatio ?? 0.01}}
          - touch: {name: ws, op: read}
timeline:
  - at: {accesses: 256}
    migrate: {vm: vm0, ${g.migrate}}
`;
}
