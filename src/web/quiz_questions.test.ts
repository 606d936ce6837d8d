// SPDX-License-Identifier: MIT
import { describe, expect, test } from "vitest";
import { chainChoices, chainSteps, checkChain } from "./quiz_chain.js";
import { checkCounter, counterQuestions, NONE } from "./quiz_counters.js";
import { quizRun } from "./quiz_run.js";

describe("fault-in and counter questions, generated from the quiz's run", () => {
  const ept = quizRun("ept");

  test("the fault-in chain is the run's first one under EPT: exit, host fault, host tables, the page, KVM's tables, the EPT entry, entry", () => {
    const steps = chainSteps(ept.faultIn, "ept");
    expect(steps.map((s) => `${s.key}${s.count > 1 ? ` x${s.count}` : ""}`)).toEqual([
      "kvm.exit",
      "host.fault",
      "host.page_alloc (pgtable) x3",
      "host.page_alloc (anon)",
      "host.rmap_add",
      "host.lru_add",
      "kvm.faultin",
      "host.page_alloc (kvm-mmu) x3",
      "kvm.spte_install",
      "kvm.entry",
    ]);
    expect(steps[0]!.words).toBe("VM exit (EPT_VIOLATION)");
    expect(steps[0]!.detail).toBe("vcpu 0, reason EPT_VIOLATION, gpa 0x100000, error 2");
    expect(steps[8]!.words).toBe("EPT entry installed");
    expect(chainChoices(steps).length).toBe(10);
    // Question 1: after the exit comes the host fault (KVM's gup on QEMU's mm).
    expect(checkChain(steps, 1, "host.fault")).toMatchObject({ right: true, why: "" });
    const wrong = checkChain(steps, 6, "kvm.spte_install");
    expect(wrong.right).toBe(false);
    expect(wrong.why).toBe(
      'Next is "KVM gets the host page (gfn -> hva -> pfn)" ("EPT entry installed" comes later, at step 9): with the page now mapped in QEMU\'s page table, get_user_pages() returns its pfn to KVM (hva_to_pfn()).',
    );
    expect(checkChain(steps, 9, "kvm.exit").why).toContain('("VM exit (EPT_VIOLATION)" already happened, at step 1)');
    expect(() => checkChain(steps, 10, "kvm.entry")).toThrow("questions 1 to 9");
    expect(checkChain(steps, 1, "kvm.entry").why).toContain("(handle_mm_fault())");
    expect(steps[0]!.reason).toContain("EPT violation (handle_ept_violation() -> kvm_mmu_page_fault() -> kvm_tdp_page_fault())");
  });

  test("under shadow paging the chain is the shadow MMU's and the words say so", () => {
    const steps = chainSteps(quizRun("shadow").faultIn, "shadow");
    expect(steps.map((s) => s.key)).toEqual([
      "kvm.exit",
      "host.page_alloc (kvm-mmu)",
      "kvm.faultin",
      "kvm.sp_alloc",
      "kvm.spte_install",
      "kvm.entry",
    ]);
    expect(steps.map((s) => s.words).join(" | ")).not.toMatch(/\bEPT\b/);
    expect(steps[4]!.words).toBe("shadow PTE (spte) installed");
  });

  test("counter questions: the answer is the counter that moved in the phase, by the engine's count", () => {
    const qs = counterQuestions(ept);
    expect(qs.map((q) => [q.phase, q.answer, q.options.find((o) => o.id === q.answer)!.delta])).toEqual([
      ["first-write", "kvm.exits", 19],
      ["first-write", "host.pgfault", 19],
      ["read-again", NONE, 0],
      ["swapped-out", "kvm.exits", 20],
      ["swapped-out", "host.pgmajfault", 20],
    ]);
    // Every other option of a question did not move in its phase.
    for (const q of qs) for (const o of q.options) if (o.id !== q.answer) expect(o.delta).toBe(0);
    expect(qs[0]!.options.map((o) => o.id)).toEqual(["kvm.exits", "kvm.pf_guest", "kvm.mmu_notifier_invalidations", "host.pgmajfault"]);
    expect(checkCounter(qs[0]!, "kvm.exits").why).toBe("KVM exits moved by 19 (every hardware VM exit).");
    expect(checkCounter(qs[0]!, "host.pgmajfault")).toEqual({
      right: false,
      why: "host /proc/vmstat pgmajfault did not move (it counts page faults that needed I/O (a swap read)); KVM exits moved by 19 (every hardware VM exit).",
    });
    expect(checkCounter(qs[2]!, NONE).right).toBe(true);
  });
});
