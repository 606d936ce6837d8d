// SPDX-License-Identifier: MIT
// Guest reclaim and swap through QEMU (issue 15 item 4): the guest swaps to a disk QEMU serves;
// without host pressure that is all, with it QEMU's reads of pages the guest swaps out are host
// swap-ins (double paging), counted in swapout_host_swapins and checked against the events.
import { describe, expect, test } from "vitest";
import type { SimEvent } from "../hw/events.js";
import { PAGE_SIZE } from "../hw/addr.js";
import { Engine } from "./engine.js";
import { Machine } from "./machine.js";
import { loadScenario } from "./scenario_load.js";

function scenario(hostRam: string, mmu: string) {
  return loadScenario(
    `
seed: 3
host: {ram: ${hostRam}, swap: 256MiB, thp: never}
vms:
  - name: vm0
    ram: 32MiB
    mmu: ${mmu}
    backing: 4k
    guest: {swap: 64MiB}
    processes:
      - name: p0
        steps:
          - mmap: {name: data, size: 48MiB}
          - touch: {name: data, op: write}
          - touch: {name: data, op: read}
`,
    "guest-swap.yaml",
  );
}

function run(hostRam: string, mmu: string) {
  const m = new Machine(scenario(hostRam, mmu));
  const events: SimEvent[] = [];
  m.bus.listen((e) => {
    if (e.kind.startsWith("guest.swap_") || e.kind === "host.swap_map") events.push(e);
  });
  const report = new Engine(m.scenario, {}, m).run();
  return { m, events, report, vm: m.vms[0]!, sw: m.vms[0]!.guest.swapStats! };
}

describe("guest swap through QEMU", () => {
  test("no host pressure: the guest swaps what its reclaim picks, the host swaps nothing, every value reads back", () => {
    const { m, events, report, vm, sw } = run("512MiB", "ept");
    const count = (k: string) => events.filter((e) => e.kind === k).length;
    expect(report.check.dataErrors).toBe(0);
    expect(sw.pswpout).toBeGreaterThan(4096); // 48 MiB written into 32 MiB of RAM
    expect(sw.pswpout).toBe(count("guest.swap_out"));
    expect(sw.pswpin).toBe(count("guest.swap_in"));
    // Only anonymous pages here: every page reclaim freed was swapped out.
    expect(sw.pgsteal_kswapd + vm.guest.stats.pgsteal_direct).toBe(sw.pswpout);
    expect(sw.nr_swap_pages).toBe(16383 - (sw.pswpout - sw.pswpin));
    expect([m.host.stat.pswpout, m.host.stat.pswpin, sw.swapout_host_swapins]).toEqual([0, 0, 0]);
    // The native twin's guest, the same kernel on bare metal, made the same choices.
    expect({ ...vm.native!.guest.swapStats! }).toEqual({ ...sw });
  });

  for (const mmu of ["ept", "shadow"]) {
    test(`${mmu}, host smaller than the guest: swapout_host_swapins = the host swap-ins of QEMU's reads for guest swap-outs`, () => {
      const { m, events, report, vm, sw } = run("24MiB", mmu);
      expect(report.check.dataErrors).toBe(0);
      expect(m.host.stat.pswpout).toBeGreaterThan(0);
      // A major host.swap_map of QEMU's mm at the hva of the frame the last guest.swap_out is writing.
      let writing = -1;
      let doublePaged = 0;
      for (const e of events) {
        if (e.kind === "guest.swap_out") writing = vm.qemu.gpaToHva((e.gfn as number) * PAGE_SIZE);
        else if (e.kind === "guest.swap_in") writing = -1;
        else if (e.kind === "host.swap_map" && e.major === 1 && e.mm === vm.qemu.mm.id && e.hva === writing) {
          doublePaged++;
          writing = -1;
        }
      }
      expect(doublePaged).toBeGreaterThan(0);
      expect(sw.swapout_host_swapins).toBe(doublePaged);
      expect(report.vms[0]!.guest.swapout_host_swapins).toBe(doublePaged);
    });
  }

  test("bad guest.swap values are errors naming the key and the fix", () => {
    const yaml = (guest: string) =>
      `host: {ram: 1GiB}\nvms: [{name: vm0, ram: 32MiB, guest: ${guest}, processes: [{name: p0, steps: []}]}]`;
    expect(() => loadScenario(yaml("{swap: 1000}"), "s.yaml")).toThrow(/vms\[0\]\.guest\.swap.*multiple of 4KiB/s);
    expect(() => loadScenario(yaml("{swap: 1MiB, kernel: none}"), "s.yaml")).toThrow(
      /guest\.swap.*remove guest\.swap or use kernel linux/s,
    );
  });
});
