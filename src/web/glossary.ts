// SPDX-License-Identifier: MIT
// The page's glossary: each term in plain words, and where it lives in Linux, KVM or QEMU
// (file and function), so a reader can go from a label on screen to the code it stands for.
// Each entry has its own link, `#glossary/<id>`; components/term.tsx links a label to it.

export interface GlossaryEntry {
  /** How the term is written on screen. */
  term: string;
  /** The words it abbreviates, or other names for it. */
  aka?: string;
  /** What it is, in plain words (a sentence or three). */
  text: string;
  /** Where it lives: kernel (or QEMU, or hardware manual) file and function. */
  kernel: string;
  /** Related entries. */
  see?: string[];
}

const ENTRIES = {
  gva: {
    term: "gva",
    aka: "guest-virtual address",
    text: "The address a program inside the guest uses. The guest's own page tables, rooted at the guest's CR3, translate it to a gpa.",
    kernel:
      "the guest kernel's page tables (arch/x86/mm); KVM reads them in software in FNAME(walk_addr_generic)() (arch/x86/kvm/mmu/paging_tmpl.h)",
    see: ["gpa", "cr3"],
  },
  gpa: {
    term: "gpa",
    aka: "guest-physical address",
    text: "What the guest believes is physical memory. It is not real RAM: KVM finds its memslot (giving an hva), and the EPT/NPT or shadow tables map it to real RAM.",
    kernel: "gpa_t (include/linux/kvm_types.h); the faulting gpa reaches kvm_mmu_page_fault() (arch/x86/kvm/mmu/mmu.c)",
    see: ["gfn", "memslot", "hpa"],
  },
  gfn: {
    term: "gfn",
    aka: "guest frame number",
    text: "A gpa divided by the 4 KiB page size: the number of a guest page. KVM indexes memslots, rmaps and dirty bitmaps by gfn.",
    kernel: "gfn_t, gpa_to_gfn() (include/linux/kvm_host.h)",
    see: ["gpa", "pfn"],
  },
  hva: {
    term: "hva",
    aka: "host-virtual address",
    text: "An address in QEMU's process where guest RAM is mapped. To the host, guest RAM is ordinary anonymous memory of QEMU: it is faulted in, aged and swapped like any other.",
    kernel: "__gfn_to_hva_memslot() (include/linux/kvm_host.h): slot->userspace_addr + (gfn - slot->base_gfn) * 4096",
    see: ["memslot", "hpa"],
  },
  hpa: {
    term: "hpa",
    aka: "host-physical address",
    text: "A real RAM address. The host's page tables map QEMU's hva to it; the EPT/NPT (or shadow) tables map the guest's address to the same frame.",
    kernel: "hpa_t (include/linux/kvm_types.h); pfn << 12 of the frame hva_to_pfn() returns (virt/kvm/kvm_main.c)",
    see: ["pfn", "hva"],
  },
  pfn: {
    term: "pfn",
    aka: "page frame number",
    text: "The number of a real 4 KiB frame of host RAM (its hpa divided by 4096). Each frame has a struct page (or belongs to a folio) describing who uses it.",
    kernel:
      "kvm_pfn_t; hva_to_pfn() (virt/kvm/kvm_main.c) turns an hva into the pfn KVM maps; page_to_pfn() (include/asm-generic/memory_model.h)",
    see: ["hpa", "gfn"],
  },
  pte: {
    term: "PTE",
    aka: "page-table entry",
    text: "One 8-byte entry of an x86 page table: the next table's (or the page's) frame address and bits such as present, writable, user, accessed and dirty. Tables have 512 entries and 4 or 5 levels.",
    kernel: "Intel SDM Vol. 3, 4.5; set_pte_at() (arch/x86/include/asm/pgtable.h); the host walks them in handle_mm_fault() (mm/memory.c)",
    see: ["ad-bits", "spte"],
  },
  spte: {
    term: "spte",
    aka: "KVM's page-table entry (EPT entry, NPT entry or shadow PTE)",
    text: "An entry of KVM's own tables: an EPT or NPT entry under two-dimensional paging, a shadow PTE under shadow paging. KVM composes it from the host frame and the access rights.",
    kernel: "make_spte() (arch/x86/kvm/mmu/spte.c); installed by tdp_mmu_map_handle_target_level() (tdp_mmu.c) or mmu_set_spte() (mmu.c)",
    see: ["sptep", "ept", "shadow-paging"],
  },
  sptep: {
    term: "sptep",
    aka: "pointer to an spte",
    text: "Where an spte sits: the address of the 8-byte slot in its table. KVM's rmap stores sptep values, so it can find and zap every spte that maps a guest page.",
    kernel: "u64 *sptep in mmu_set_spte() and pte_list_add() (arch/x86/kvm/mmu/mmu.c)",
    see: ["spte", "rmap"],
  },
  rmap: {
    term: "rmap",
    aka: "reverse map",
    text: "A map from a page back to the entries that map it. The host's rmap finds QEMU's PTEs for a frame (to age or unmap it); KVM's rmap (per memslot and gfn) finds the sptes. KVM's TDP MMU keeps no rmap: it walks its tables by gfn.",
    kernel:
      "host: folio_referenced(), try_to_unmap() (mm/rmap.c); KVM: rmap_add(), pte_list_add(), kvm_zap_rmap() (arch/x86/kvm/mmu/mmu.c)",
    see: ["sptep", "lru"],
  },
  memslot: {
    term: "memslot",
    aka: "KVM memory slot",
    text: "A range of guest-physical memory QEMU registered with KVM: its first gfn, its size and the hva where QEMU mapped it. KVM turns a faulting gpa into an hva through it.",
    kernel: "struct kvm_memory_slot, __kvm_set_memory_region() (virt/kvm/kvm_main.c); QEMU kvm_set_phys_mem() (accel/kvm/kvm-all.c)",
    see: ["gpa", "hva"],
  },
  "mmu-notifier": {
    term: "mmu_notifier",
    text: "The callbacks by which the host's memory manager tells KVM, before it unmaps, moves or ages a page of QEMU's memory. KVM then zaps (or ages) the sptes that map it, so the guest never keeps a stale mapping.",
    kernel: "mm/mmu_notifier.c; kvm_mmu_notifier_invalidate_range_start(), kvm_mmu_notifier_clear_flush_young() (virt/kvm/kvm_main.c)",
    see: ["zap", "spte"],
  },
  zap: {
    term: "zap",
    text: "KVM's word for removing sptes (and flushing the TLBs that may hold them). The next guest access to the page exits again and KVM maps it afresh.",
    kernel:
      "kvm_unmap_gfn_range() (arch/x86/kvm/mmu/mmu.c), tdp_mmu_zap_leafs() (tdp_mmu.c), kvm_flush_remote_tlbs() (virt/kvm/kvm_main.c)",
    see: ["mmu-notifier", "tlb"],
  },
  ept: {
    term: "EPT",
    aka: "Extended Page Tables (Intel)",
    text: "Intel's second set of page tables, kept by KVM and walked by the hardware: they map gpa to hpa. Every address the guest's own walk produces goes through them, which is why a cold 4+4-level walk reads 24 entries.",
    kernel: "construct_eptp(), handle_ept_violation() (arch/x86/kvm/vmx/vmx.c); tables built by the TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c)",
    see: ["tdp", "npt", "ept-violation"],
  },
  npt: {
    term: "NPT",
    aka: "Nested Page Tables (AMD, also RVI)",
    text: "AMD's equivalent of EPT: second-level tables in the ordinary x86 page-table format, rooted at nCR3, mapping gpa to hpa.",
    kernel: "npf_interception() (arch/x86/kvm/svm/svm.c); tables built by the TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c)",
    see: ["tdp", "ept", "npf"],
  },
  tdp: {
    term: "TDP",
    aka: "two-dimensional paging",
    text: "KVM's common name for EPT and NPT: the hardware walks the guest's tables and KVM's tables together (the two-dimensional walk). The TDP MMU is KVM's implementation of these tables.",
    kernel: "kvm_tdp_page_fault() (arch/x86/kvm/mmu/mmu.c), kvm_tdp_mmu_map() (arch/x86/kvm/mmu/tdp_mmu.c)",
    see: ["ept", "npt", "shadow-paging"],
  },
  "shadow-paging": {
    term: "shadow paging",
    aka: "shadow MMU, SPT",
    text: "Paging without EPT/NPT: KVM builds shadow tables that map gva straight to hpa, and the hardware walks those (one dimension, as natively). To keep them in step KVM write-protects the guest's tables and intercepts page faults, CR3 loads and INVLPG.",
    kernel: "FNAME(page_fault)(), FNAME(fetch)() (arch/x86/kvm/mmu/paging_tmpl.h); kvm_mmu_get_shadow_page() (mmu.c)",
    see: ["spte", "write-protect", "unsync", "cr3"],
  },
  "write-protect": {
    term: "write-protected guest tables",
    aka: "write tracking, emulation",
    text: "Under shadow paging KVM maps each guest page-table page read-only, so a guest write to its own page table exits; KVM emulates the write and updates (or drops) the shadow entries built from it.",
    kernel: "account_shadowed(), kvm_mmu_track_write() (arch/x86/kvm/mmu/mmu.c); x86_emulate_instruction() (arch/x86/kvm/x86.c)",
    see: ["shadow-paging", "unsync"],
  },
  unsync: {
    term: "unsync",
    aka: "out-of-sync shadow pages",
    text: "A shadow page KVM lets fall out of step with the guest's leaf table instead of write-protecting it; KVM brings it back in sync when the guest flushes its TLB (INVLPG, a CR3 load).",
    kernel: "kvm_unsync_page(), mmu_try_to_unsync_pages(), kvm_mmu_sync_roots() (arch/x86/kvm/mmu/mmu.c)",
    see: ["shadow-paging", "write-protect"],
  },
  walk: {
    term: "two-dimensional walk",
    aka: "nested walk, 2D walk",
    text: "A TLB miss under EPT/NPT: each guest table's gpa is itself translated by an m-level walk of KVM's tables before the entry can be read, and so is the data's gpa: n*m + n + m reads, 24 for 4+4 levels, then the data.",
    kernel:
      "hardware (Intel SDM Vol. 3, 'The extended page table mechanism'); KVM's software walk does the same, translating each table's gpa with kvm_translate_gpa() in FNAME(walk_addr_generic)() (arch/x86/kvm/mmu/paging_tmpl.h)",
    see: ["ept", "psc", "tlb"],
  },
  psc: {
    term: "PSC",
    aka: "paging-structure caches",
    text: "CPU caches of upper-level paging entries (PML4E, PDPTE, PDE), so a TLB miss can start the walk lower down and skip reads.",
    kernel:
      "hardware (Intel SDM Vol. 3, 4.10.3); invalidated with the TLB by INVLPG or INVPCID in flush_tlb_one_user() and by CR3 loads (arch/x86/mm/tlb.c)",
    see: ["tlb", "walk"],
  },
  tlb: {
    term: "TLB",
    aka: "translation lookaside buffer",
    text: "The CPU's cache of finished translations (under EPT: gva straight to hpa). A hit needs no table read; KVM must flush it whenever it removes or weakens an entry.",
    kernel:
      "flush_tlb_mm_range() (arch/x86/mm/tlb.c); KVM: kvm_flush_remote_tlbs() (virt/kvm/kvm_main.c), kvm_vcpu_flush_tlb_guest() (arch/x86/kvm/x86.c)",
    see: ["vpid", "psc"],
  },
  vpid: {
    term: "VPID/ASID",
    aka: "virtual-processor ID (Intel), address-space ID (AMD)",
    text: "A tag on TLB entries saying which guest they belong to, so they survive VM exits and entries instead of being flushed each time.",
    kernel: "allocate_vpid() (arch/x86/kvm/vmx/vmx.c); new_asid() (arch/x86/kvm/svm/svm.c)",
    see: ["tlb", "exit"],
  },
  cr3: {
    term: "CR3",
    text: "The register holding the physical address of the top page table of the running address space. The guest loads its own CR3 on every process switch; under shadow paging each load exits so KVM can switch shadow roots.",
    kernel: "kvm_set_cr3() (arch/x86/kvm/x86.c), kvm_mmu_new_pgd() (arch/x86/kvm/mmu/mmu.c)",
    see: ["shadow-paging", "gva"],
  },
  exit: {
    term: "exit",
    aka: "VM exit",
    text: "The CPU leaves the guest and enters KVM because something needs the host: a missing EPT entry, a page fault under shadow paging, a CR3 load, I/O. KVM handles it and re-enters the guest. Each exit costs thousands of cycles.",
    kernel: "vcpu_enter_guest() (arch/x86/kvm/x86.c); vmx_handle_exit() (vmx/vmx.c), svm_handle_exit() (svm/svm.c)",
    see: ["ept-violation", "npf"],
  },
  "ept-violation": {
    term: "EPT violation",
    text: "The exit (reason 48) the CPU takes when the EPT has no entry for a gpa, or one with too few rights. KVM's fault handler then finds the host page and installs the EPT entry.",
    kernel: "handle_ept_violation() (arch/x86/kvm/vmx/vmx.c) -> kvm_mmu_page_fault() (arch/x86/kvm/mmu/mmu.c)",
    see: ["exit", "ept", "npf"],
  },
  npf: {
    term: "NPF",
    aka: "nested page fault (AMD #NPF)",
    text: "AMD's counterpart of the EPT violation: the exit taken when the NPT has no entry (or too few rights) for a gpa.",
    kernel: "npf_interception() (arch/x86/kvm/svm/svm.c) -> kvm_mmu_page_fault() (arch/x86/kvm/mmu/mmu.c)",
    see: ["exit", "npt", "ept-violation"],
  },
  "page-fault": {
    term: "page fault",
    aka: "#PF",
    text: "The exception a CPU raises when a walk finds no present entry (or too few rights). In the guest it runs the guest kernel's handler; on the host, KVM's request for QEMU's page faults it in like any other.",
    kernel: "handle_mm_fault() (mm/memory.c); KVM reaches it through hva_to_pfn() -> get_user_pages (virt/kvm/kvm_main.c)",
    see: ["zero-page", "swap"],
  },
  "ad-bits": {
    term: "A/D bits",
    aka: "accessed and dirty bits",
    text: "Bits the hardware sets in an entry when the page is used (accessed) or written (dirty). Reclaim reads and clears the accessed bits of QEMU's PTEs and, through the mmu_notifier, of KVM's sptes, to tell hot pages from cold ones.",
    kernel:
      "folio_referenced() (mm/rmap.c) via ptep_clear_flush_young_notify(); KVM: kvm_age_gfn(), mmu_spte_age() (arch/x86/kvm/mmu/mmu.c)",
    see: ["lru", "mmu-notifier", "pml"],
  },
  pml: {
    term: "PML",
    aka: "page-modification logging (Intel)",
    text: "The CPU writes the gpa of each page whose EPT dirty bit it sets into a 512-entry log; a full log exits to KVM, which copies it into the dirty bitmap. Cheaper than write-protecting for dirty logging.",
    kernel: "handle_pml_full(), vmx_flush_pml_buffer() (arch/x86/kvm/vmx/vmx.c)",
    see: ["dirty-log", "ad-bits"],
  },
  "dirty-log": {
    term: "dirty logging",
    text: "KVM records which guest pages were written since the last look (by write-protecting them, or with PML), so QEMU can copy only those during live migration.",
    kernel: "kvm_get_dirty_log_protect(), mark_page_dirty_in_slot() (virt/kvm/kvm_main.c); QEMU migration_bitmap_sync() (migration/ram.c)",
    see: ["dirty-ring", "pml", "migration"],
  },
  "dirty-ring": {
    term: "dirty ring",
    text: "A per-vCPU ring of written gfns that QEMU reads and resets, instead of one bitmap per memslot.",
    kernel: "kvm_dirty_ring_push(), kvm_dirty_ring_reset() (virt/kvm/dirty_ring.c)",
    see: ["dirty-log"],
  },
  migration: {
    term: "live migration",
    aka: "pre-copy, post-copy",
    text: "Moving a running guest to another host: QEMU copies RAM in rounds while dirty logging reports pages written meanwhile, then stops the guest for the rest (pre-copy); post-copy starts the guest first and fetches pages on fault.",
    kernel: "QEMU ram_save_iterate() (migration/ram.c), postcopy_ram_incoming_setup() (migration/postcopy-ram.c)",
    see: ["dirty-log"],
  },
  lru: {
    term: "LRU",
    aka: "least-recently-used lists (active, inactive)",
    text: "The host's lists of pages by recent use: new anonymous pages join the inactive list; reclaim scans its tail, keeps or activates pages found young, and evicts the rest.",
    kernel: "folio_add_lru() (mm/swap.c); shrink_active_list(), shrink_inactive_list(), shrink_folio_list() (mm/vmscan.c)",
    see: ["kswapd", "ad-bits", "swap"],
  },
  kswapd: {
    term: "kswapd",
    text: "The per-node kernel thread woken when free memory falls below the low watermark; it reclaims pages until free memory is back above the high watermark.",
    kernel: "kswapd(), balance_pgdat() (mm/vmscan.c); woken by wakeup_kswapd() from the allocator",
    see: ["watermark", "lru", "direct-reclaim"],
  },
  "direct-reclaim": {
    term: "direct reclaim",
    text: "Reclaim done by the allocating task itself, when free memory falls below the min watermark and kswapd has not kept up.",
    kernel: "__alloc_pages_direct_reclaim() (mm/page_alloc.c) -> try_to_free_pages() (mm/vmscan.c)",
    see: ["kswapd", "watermark"],
  },
  watermark: {
    term: "watermarks",
    aka: "min, low, high",
    text: "Per-zone free-memory thresholds: below low the allocator wakes kswapd, below min allocations reclaim directly, and kswapd stops above high.",
    kernel: "__setup_per_zone_wmarks() (mm/page_alloc.c)",
    see: ["kswapd", "buddy"],
  },
  buddy: {
    term: "free pages",
    aka: "buddy allocator",
    text: "The host's free frames, kept by the buddy allocator in blocks of 2^order pages; every page fault, page table and swap-in takes from it.",
    kernel: "__alloc_pages(), free_unref_page() (mm/page_alloc.c); counted in nr_free_pages",
    see: ["watermark"],
  },
  swap: {
    term: "swap",
    aka: "swap device, slot, swap entry",
    text: "Where evicted anonymous pages go. Reclaim writes the page to a slot and replaces QEMU's PTE with a swap entry naming that slot; the next touch faults and reads it back (a swap-in).",
    kernel: "folio_alloc_swap() (mm/swapfile.c), try_to_unmap_one() (mm/rmap.c), do_swap_page() (mm/memory.c)",
    see: ["swap-cache", "lru", "zswap"],
  },
  "swap-cache": {
    term: "swap cache",
    text: "Pages on their way to or from swap, indexed by swap entry: a fault that finds its page there needs no disk read, and two mappings of one swapped page share it.",
    kernel: "add_to_swap(), swap_cache_get_folio() (mm/swap_state.c)",
    see: ["swap"],
  },
  zswap: {
    term: "zswap",
    text: "A compressed cache in RAM in front of the swap device: evicted pages are compressed and kept in memory, and written to the device only when the pool is full.",
    kernel: "zswap_store(), zswap_load() (mm/zswap.c)",
    see: ["swap"],
  },
  "zero-page": {
    term: "zero page",
    text: "A single shared page of zeros. A read fault on untouched anonymous memory maps it read-only; the first write copies it into a real page (copy on write).",
    kernel: "do_anonymous_page() with my_zero_pfn() (mm/memory.c); the write goes through do_wp_page()",
    see: ["page-fault", "thp"],
  },
  thp: {
    term: "THP",
    aka: "transparent huge pages",
    text: "2 MiB pages the host uses for anonymous memory when it can. When QEMU's memory is backed by one, KVM can map it with a single 2 MiB entry, shortening the walk and widening TLB reach.",
    kernel:
      "do_huge_pmd_anonymous_page() (mm/huge_memory.c), khugepaged (mm/khugepaged.c); KVM host_pfn_mapping_level(), kvm_mmu_hugepage_adjust() (arch/x86/kvm/mmu/mmu.c)",
    see: ["hugetlbfs", "tlb"],
  },
  hugetlbfs: {
    term: "hugetlbfs",
    text: "Huge pages (2 MiB or 1 GiB) reserved in advance in a pool; QEMU can back guest RAM with them (memory-backend-file on /dev/hugepages). They are never swapped.",
    kernel: "hugetlb_fault() (mm/hugetlb.c), fs/hugetlbfs/inode.c",
    see: ["thp"],
  },
  ksm: {
    term: "KSM",
    aka: "kernel samepage merging",
    text: "ksmd scans memory marked mergeable (QEMU marks guest RAM so) and merges identical pages into one read-only copy; a write to it breaks the sharing with a private copy.",
    kernel: "ksm_do_scan(), try_to_merge_one_page(), write_protect_page(), replace_page() (mm/ksm.c)",
    see: ["mmu-notifier"],
  },
  balloon: {
    term: "balloon",
    aka: "virtio-balloon",
    text: "A driver in the guest that takes pages from the guest's allocator and tells QEMU, which discards them on the host, so the host gets the memory back. Deflating returns them to the guest.",
    kernel:
      "guest fill_balloon() (drivers/virtio/virtio_balloon.c); QEMU balloon_inflate_page() -> ram_block_discard_range() (hw/virtio/virtio-balloon.c)",
    see: ["free-page-reporting"],
  },
  "free-page-reporting": {
    term: "free page reporting",
    text: "The guest tells the host which of its pages are free, in blocks, and the host discards them until the guest uses them again.",
    kernel: "page_reporting_process() (mm/page_reporting.c); QEMU virtio_balloon_handle_report() (hw/virtio/virtio-balloon.c)",
    see: ["balloon"],
  },
} satisfies Record<string, GlossaryEntry>;

export type TermId = keyof typeof ENTRIES;

export const GLOSSARY: Readonly<Record<TermId, GlossaryEntry>> = ENTRIES;

/** The glossary's ids, sorted by their term as shown. */
export const TERM_IDS: readonly TermId[] = (Object.keys(ENTRIES) as TermId[]).sort((a, b) =>
  ENTRIES[a].term.localeCompare(ENTRIES[b].term, "en", { sensitivity: "base" }),
);

export function isTermId(id: string): id is TermId {
  return Object.hasOwn(ENTRIES, id);
}

/** The entry for KVM's second-level tables under `mmu` ("ept", "npt", "shadow"). */
export function mmuTerm(mmu: string): TermId {
  return mmu === "npt" ? "npt" : mmu === "shadow" ? "shadow-paging" : "ept";
}

/** The entry for the exit a missing entry causes under `mmu`. */
export function missExitTerm(mmu: string): TermId {
  return mmu === "npt" ? "npf" : mmu === "shadow" ? "page-fault" : "ept-violation";
}
