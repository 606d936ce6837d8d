// SPDX-License-Identifier: MIT
import { describe, expect, it } from "vitest";
import { EventBus } from "../hw/events.js";
import { HostKernel, type HostConfig } from "./index.js";
import { UFFDIO_REGISTER_MODE_MISSING, UserfaultfdCtx, type UserfaultfdReader } from "./userfaultfd.js";

const MiB = 1024 * 1024;
const P = 4096;

function boot(cfg: Partial<HostConfig> = {}) {
  return new HostKernel({ ram: 64 * MiB, swap: 0, thp: "never", debugChecks: true, ...cfg }, new EventBus());
}

/** A frame of a source process (the data UFFDIO_COPY copies from). */
function sourceFrame(k: HostKernel): number {
  const mm = k.createProcess("src");
  const a = k.mmap(mm, P, { noreserve: true });
  k.userAccess(mm, a, true, 1);
  return k.probe(mm, a).pfn;
}

/** A reader serving every fault from a source frame holding 0x1000 + page index (or the zero page). */
class Server implements UserfaultfdReader {
  readonly seen: number[] = [];
  constructor(
    readonly src: number,
    readonly base: number,
    readonly zero = false,
  ) {}
  missing(ctx: UserfaultfdCtx, addr: number): void {
    this.seen.push((addr - this.base) / P);
    if (this.zero) {
      expect(ctx.zeropage(addr)).toBe(0);
      return;
    }
    ctx.k.mem.content[this.src] = 0x1000 + (addr - this.base) / P;
    expect(ctx.copy(addr, this.src)).toBe(0);
  }
}

describe("userfaultfd MISSING", () => {
  it("hands each missing page to the reader once, UFFDIO_COPY places its data, later accesses do not fault", () => {
    for (const thp of ["never", "always"] as const) {
      const k = boot({ thp });
      const src = sourceFrame(k);
      const mm = k.createProcess("dst");
      const base = k.mmap(mm, 4 * MiB, { noreserve: true });
      const reader = new Server(src, base);
      const ctx = new UserfaultfdCtx(k, mm, reader);
      ctx.register(base, 4 * MiB, UFFDIO_REGISTER_MODE_MISSING);
      const pf0 = k.stat.pgfault;
      expect(k.userAccess(mm, base + 5 * P + 8, false)).toBe(0x1005);
      expect(k.userAccess(mm, base + 7 * P, true, 77)).toBe(77);
      expect(k.userAccess(mm, base + 5 * P, false)).toBe(0x1005);
      expect(k.userAccess(mm, base + 7 * P, false)).toBe(77);
      expect(reader.seen).toEqual([5, 7]);
      expect(ctx.stats.uffd_missing_faults).toBe(2);
      expect(ctx.stats.uffd_copy).toBe(2);
      expect(k.stat.pgfault - pf0).toBe(2);
      expect(mm.rss).toBe(2); // 4 KiB pages even under thp: always
      // A page already there: -EEXIST, nothing changes.
      expect(ctx.copy(base + 5 * P, src)).toBe(-17);
      expect(ctx.stats.uffd_eexist).toBe(1);
      k.checkInvariants();
    }
  });

  it("UFFDIO_ZEROPAGE maps the zero page; a write then copies it (do_wp_page), with no second userfault", () => {
    const k = boot();
    const mm = k.createProcess("dst");
    const base = k.mmap(mm, MiB, { noreserve: true });
    const ctx = new UserfaultfdCtx(k, mm, new Server(sourceFrame(k), base, true));
    ctx.register(base, MiB, UFFDIO_REGISTER_MODE_MISSING);
    expect(k.userAccess(mm, base, false)).toBe(0);
    expect(mm.rssZeroPage).toBe(1);
    expect(k.userAccess(mm, base, true, 9)).toBe(9);
    expect(ctx.stats.uffd_missing_faults).toBe(1);
    expect(ctx.stats.uffd_zeropage).toBe(1);
    expect(mm.rss).toBe(1);
  });

  it("after UFFDIO_UNREGISTER faults are the kernel's again; a reader that places nothing gets SIGBUS", () => {
    const k = boot();
    const mm = k.createProcess("dst");
    const base = k.mmap(mm, MiB, { noreserve: true });
    const ctx = new UserfaultfdCtx(k, mm, { missing: () => {} });
    ctx.register(base, MiB, UFFDIO_REGISTER_MODE_MISSING);
    expect(k.userAccess(mm, base, true, 5)).toBe(-3); // ACCESS_SIGBUS
    ctx.unregister(base, MiB);
    expect(k.userAccess(mm, base, true, 5)).toBe(5);
    expect(ctx.stats.uffd_missing_faults).toBe(1);
  });
});
