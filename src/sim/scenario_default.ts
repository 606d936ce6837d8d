// SPDX-License-Identifier: MIT
// The built-in scenario `npm start` runs: the whole story of SEED-PATHS.md in one VM.
// Lazy allocation, first-touch EPT violations and host faults (path 4), host memory
// pressure, reclaim through the rmap and the mmu_notifier, swap-out (path 5), and the
// re-touch that brings every page back with a swap-in (path 6).

export const DEFAULT_SCENARIO_YAML = `# memvirt's built-in scenario: a guest bigger than its host, pushed into swap and back.
seed: 1                       # every random choice derives from it
host:
  ram: 256MiB                 # the host has less memory than the guest thinks it has...
  swap: 1GiB                  # ...so it must swap guest pages out to keep up
  thp: never                  # 4 KiB host pages only: every step is one page
vms:
  - name: vm0
    ram: 512MiB               # guest RAM: twice the host's; QEMU only reserves it (path 1)
    vcpus: 1                  # one vCPU, so every step below runs in order
    mmu: ept                  # nested paging: 24 table reads per cold walk (path 3)
    backing: 4k               # anonymous 4 KiB pages behind guest RAM, so they can be swapped
    prealloc: false           # lazy: host RSS grows only with what the guest touches
    guest:
      levels: 4               # 4-level guest tables
    processes:
      - name: p0
        vcpu: 0               # runs on vCPU 0
        steps:
          - mmap: {name: heap, size: 384MiB}   # guest-side mapping: no guest frame, no host page yet
          - touch: {name: heap, op: write}     # first touch of each page: guest fault, EPT violation,
                                               # exit, host fault-in, EPT entry, resume (path 4);
                                               # past 256MiB the host runs short: kswapd ages pages
                                               # (asking KVM for the EPT A bit), the mmu_notifier
                                               # makes KVM zap the entry, the page goes to swap (path 5)
          - touch: {name: heap, op: read}      # re-read it all: pages swapped out take an EPT
                                               # violation and a swap-in, and read back what was
                                               # written (path 6); others still hit
          - random: {name: heap, accesses: 200_000, writeRatio: 0.3}   # then steady state: reuse
                                               # keeps hot pages resident, cold ones cycle via swap
`;
