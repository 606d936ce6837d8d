// SPDX-License-Identifier: MIT
// demand_paging_test's userfaultfd handlers (uffd_setup_demand_paging() and
// uffd_handler_thread_fn() in lib/userfaultfd_util.c, handle_uffd_page_request() in the test):
// QEMU-side uffds registered MISSING over each vCPU's slice of the test region (one for all
// with -a or -o), every fault resolved by UFFDIO_COPY of one page.
//
// simplified: the 0xAB page the handler copies from is a zero-content frame (memvirt tags page contents; every page is then written by the guest).
// simplified: the reader threads (-r) are not modelled apart: a fault is resolved at once, after -d's delay.

import { PAGE_SIZE } from "../hw/addr.js";
import { UFFDIO_REGISTER_MODE_MISSING, UserfaultfdCtx, type UserfaultfdReader } from "../host/userfaultfd.js";
import type { Memstress } from "./selftest_memstress.js";

const EEXIST = -17;

/** handle_uffd_page_request(UFFDIO_REGISTER_MODE_MISSING): UFFDIO_COPY of the faulting page; -EEXIST (another vCPU's fault placed it, -o) is fine. */
class DemandPagingHandler implements UserfaultfdReader {
  copies = 0;
  missing(ctx: UserfaultfdCtx, addr: number): void {
    const r = ctx.copy(addr - (addr % PAGE_SIZE), ctx.k.zeroPfn);
    if (r < 0 && r !== EEXIST) throw new RangeError(`Failed UFFDIO_COPY in 0x${addr.toString(16)} with errno: ${-r}`);
    if (r === 0) this.copies++;
  }
}

export interface DemandPagingUffd {
  ctxs: UserfaultfdCtx[];
  /** Faults handed to the readers so far, over all uffds. */
  faults(): number;
}

/** Registers the uffds on QEMU's mm and has Memstress count the vCPUs' userfaults as cost-model `userfault` events. */
export function setupDemandPaging(ms: Memstress, single: boolean): DemandPagingUffd {
  const q = ms.vm.qemu;
  const handler = new DemandPagingHandler();
  const ranges = single
    ? [{ gpa: ms.gpa, len: ms.size }]
    : ms.gva.map((gva) => ({ gpa: ms.gpa + (gva - ms.gva[0]!), len: ms.pages * PAGE_SIZE }));
  const ctxs = ranges.map((r) => {
    const ctx = new UserfaultfdCtx(q.host, q.mm, handler);
    ctx.register(q.gpaToHva(r.gpa), r.len, UFFDIO_REGISTER_MODE_MISSING);
    return ctx;
  });
  const faults = () => ctxs.reduce((a, c) => a + c.stats.uffd_missing_faults, 0);
  ms.attributeToVcpus("userfault", faults);
  return { ctxs, faults };
}
