// SPDX-License-Identifier: MIT
// The C reference for `npm run bench`: the walks the bench times in the model, done the way
// hardware (or a tight C emulator) would, so the model's speed can be given as a ratio.
//
// Memory mirrors the model's ScratchRange (src/hw/scratch_machine.ts) frame for frame: data
// pages at frames 0..pages-1, then the guest tables, then (nested) the EPT tables, allocated in
// the same order, so every reference lands at the same host-physical address as in the model.
// Physical memory is one reserved mapping indexed by frame number: a table is reached from its
// frame with one load (phys + frame * 512 entries); only table pages are ever touched.
//
//   walk <mode> <bytes> <seed> <batch> <sampleSeconds> <samples> <logWalks>
//   mode: cold2d (4-level guest tables, every table pointer and the final gpa through
//         4-level EPT: 24 table reads + the data reference), native1d (4 table reads + data),
//         tlbhit (a 128-set x 16-way TLB with LRU, the model's Golden Cove default, in front
//         of the 2D walk).
// Prints JSON lines: first the passes over the batch per sample and a hash of the address of
// every reference of the first <logWalks> accesses of a fresh run; then per sample its CPU
// seconds (CLOCK_PROCESS_CPUTIME_ID), memory references per access (table reads and the data
// reference) and the sum of every access's hpa over a pass. <samples> 0: a sample per line
// read on stdin, until EOF.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define GVA_BASE 0x7f0000000000ULL
#define PFN_MASK 0x000ffffffffff000ULL
#define PTE_P 1ULL
#define PTE_A (1ULL << 5)
#define EPT_RWX 7ULL
#define EPT_A (1ULL << 8)
#define EPT_WB (6ULL << 3)

static uint64_t *phys; // frame f's entries at phys[f * 512]
static uint64_t next_guest, next_host, cr3, ept_root;
static int nested;
static uint64_t refs;
static uint32_t ref_hash;
static int logging;

static inline void log_ref(uint64_t hpa) {
  if (logging) ref_hash = ref_hash * 31u + (uint32_t)(hpa >> 3);
}

static uint64_t new_table(int host) {
  uint64_t f = host ? next_host++ : next_guest++;
  memset(&phys[f * 512], 0, 4096);
  return f;
}

// ScratchRange.map: the tree at `root` maps addr -> pfn with 4 KiB pages.
static void map(uint64_t root, uint64_t addr, uint64_t pfn, int ept) {
  uint64_t t = root;
  for (int level = 4; level > 1; level--) {
    uint64_t *e = &phys[t * 512 + ((addr >> (12 + 9 * (level - 1))) & 511)];
    if (*e == 0) {
      uint64_t child = new_table(ept);
      *e = (child << 12) | (ept ? EPT_RWX : 7);
    }
    t = (*e & PFN_MASK) >> 12;
  }
  phys[t * 512 + ((addr >> 12) & 511)] = (pfn << 12) | (ept ? EPT_RWX | EPT_WB : 7);
}

static int fault(const char *what, uint64_t a) {
  fprintf(stderr, "walk: %s fault at 0x%llx\n", what, (unsigned long long)a);
  exit(2);
}

// gpa -> hpa through 4-level EPT: 4 references.
static inline uint64_t ept_translate(uint64_t gpa) {
  uint64_t t = ept_root;
  uint64_t perm = EPT_RWX;
  for (int level = 4; level >= 1; level--) {
    uint64_t *e = &phys[t * 512 + ((gpa >> (12 + 9 * (level - 1))) & 511)];
    log_ref((uint64_t)((char *)e - (char *)phys));
    uint64_t v = *e;
    refs++;
    if ((v & EPT_RWX) == 0) fault("EPT", gpa);
    if ((v & EPT_A) == 0) *e = v | EPT_A;
    perm &= v;
    t = (v & PFN_MASK) >> 12;
  }
  if ((perm & 1) == 0) fault("EPT read", gpa);
  return (t << 12) | (gpa & 4095);
}

// The guest walk: each table's gpa through EPT (nested), then the entry; then the final gpa.
static inline uint64_t walk(uint64_t gva) {
  uint64_t t = cr3;
  uint64_t us = 4;
  for (int level = 4; level >= 1; level--) {
    uint64_t egpa = (t << 12) + (((gva >> (12 + 9 * (level - 1))) & 511) << 3);
    uint64_t ehpa = nested ? ept_translate(egpa) : egpa;
    uint64_t *e = &phys[ehpa >> 3];
    log_ref(ehpa);
    uint64_t v = *e;
    refs++;
    if ((v & PTE_P) == 0) fault("guest", gva);
    if ((v & PTE_A) == 0) *e = v | PTE_A;
    us &= v;
    t = (v & PFN_MASK) >> 12;
  }
  if (us == 0) fault("guest user", gva);
  uint64_t gpa = (t << 12) | (gva & 4095);
  uint64_t hpa = nested ? ept_translate(gpa) : gpa;
  log_ref(hpa);
  refs++;
  return hpa;
}

// The TLB: AssocCache (src/hw/assoc_cache.ts) with the model's geometry and lookup order
// (the set's most recently used way first, then the set), LRU by stamp.
#define SETS 128
#define WAYS 16
#define CP_USER 4
static uint64_t tkey[SETS * WAYS], tval[SETS * WAYS], tstamp[SETS * WAYS], tclock;
static int32_t tctx[SETS * WAYS], tpcid[SETS * WAYS], tperm[SETS * WAYS], tmru[SETS];

static inline int tlb_lookup(uint64_t key, int32_t ctx, int32_t pcid) {
  uint32_t set = (uint32_t)key & (SETS - 1);
  int base = set * WAYS;
  int i = base + tmru[set];
  if (tkey[i] == key && tctx[i] == ctx && tpcid[i] == pcid) {
    tstamp[i] = ++tclock;
    return i;
  }
  for (i = base; i < base + WAYS; i++) {
    if (tkey[i] == key && tctx[i] == ctx && tpcid[i] == pcid) {
      tstamp[i] = ++tclock;
      tmru[set] = i - base;
      return i;
    }
  }
  return -1;
}

static void tlb_fill(uint64_t key, int32_t ctx, int32_t pcid, uint64_t value, int32_t perm) {
  int base = ((uint32_t)key & (SETS - 1)) * WAYS;
  int victim = base;
  uint64_t oldest = UINT64_MAX;
  for (int i = base; i < base + WAYS; i++) {
    if (tctx[i] == 0) { victim = i; break; }
    if (tstamp[i] < oldest) { victim = i; oldest = tstamp[i]; }
  }
  tkey[victim] = key; tctx[victim] = ctx; tpcid[victim] = pcid; tval[victim] = value; tperm[victim] = perm;
  tstamp[victim] = ++tclock;
}

static uint64_t tlb_hits;

static inline uint64_t access_tlb(uint64_t gva) {
  uint64_t vpn = gva >> 12;
  int i = tlb_lookup(vpn, 1, 1);
  if (i >= 0 && (tperm[i] & CP_USER) != 0) {
    tlb_hits++;
    refs++;
    uint64_t hpa = (tval[i] << 12) | (gva & 4095);
    log_ref(hpa);
    return hpa;
  }
  uint64_t hpa = walk(gva);
  tlb_fill(vpn, 1, 1, hpa >> 12, CP_USER);
  return hpa;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: walk cold2d|native1d|tlbhit <bytes> <seed> <batch> <sampleSeconds> <samples> <logWalks>\n");
    return 2;
  }
  const char *mode = argv[1];
  int tlb = strcmp(mode, "tlbhit") == 0;
  nested = strcmp(mode, "native1d") != 0;
  uint64_t bytes = strtoull(argv[2], 0, 10);
  uint32_t seed = (uint32_t)strtoul(argv[3], 0, 10);
  long batch = strtol(argv[4], 0, 10);
  double sample_s = strtod(argv[5], 0);
  int samples = atoi(argv[6]);
  long log_walks = strtol(argv[7], 0, 10);

  // ScratchRange's frame layout.
  uint64_t pages = (bytes + 4095) / 4096;
  uint64_t table_pages = (pages + 511) / 512 + (pages + 512 * 512 - 1) / (512 * 512) + 8;
  uint64_t guest_frames = pages + table_pages;
  uint64_t host_tables = nested ? (guest_frames + 511) / 512 + (guest_frames + 512 * 512 - 1) / (512 * 512) + 8 : 0;
  size_t len = (guest_frames + host_tables) * 4096;
  phys = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (phys == MAP_FAILED) { perror("mmap"); return 1; }
  next_guest = pages;
  next_host = guest_frames;
  uint64_t root = new_table(0);
  if (nested) {
    ept_root = new_table(1);
    for (uint64_t f = 0; f < guest_frames; f++) map(ept_root, f * 4096, f, 1);
  }
  for (uint64_t p = 0; p < pages; p++) map(root, GVA_BASE + p * 4096, p, 0);
  cr3 = root;

  // bench/run.ts addresses(): the same xorshift32 stream.
  uint64_t *addrs = malloc(batch * sizeof *addrs);
  uint32_t x = seed ? seed : 1;
  for (long i = 0; i < batch; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    addrs[i] = GVA_BASE + (uint64_t)(x % pages) * 4096 + ((x >> 20) & 0x1f8);
  }

  // The reference hash over a fresh run's first accesses (A bits still clear, TLB empty).
  logging = 1;
  for (long i = 0; i < log_walks && i < batch; i++) (void)(tlb ? access_tlb(addrs[i]) : walk(addrs[i]));
  logging = 0;

  uint64_t sum = 0;
  // Warm-up pass (sets every A bit, fills the TLB), then calibrate passes per sample.
  for (long i = 0; i < batch; i++) sum += tlb ? access_tlb(addrs[i]) : walk(addrs[i]);
  double t0 = cpu_now();
  for (long i = 0; i < batch; i++) sum += tlb ? access_tlb(addrs[i]) : walk(addrs[i]);
  double one = cpu_now() - t0;
  long passes = one > 0 ? (long)(sample_s / one) + 1 : 1000;
  // The first line: what the samples will be. Then one sample per line read on stdin (the
  // bench interleaves them with the model's samples, so both see the same machine), or
  // <samples> samples at once when <samples> > 0.
  printf("{\"mode\":\"%s\",\"batch\":%ld,\"passes\":%ld,\"refHash\":%u,\"keep\":%llu}\n", mode, batch, passes, ref_hash,
         (unsigned long long)(sum & 1));
  fflush(stdout);
  char line[64];
  for (int s = 0; samples > 0 ? s < samples : fgets(line, sizeof line, stdin) != 0; s++) {
    uint64_t pass_sum = 0;
    tlb_hits = 0;
    refs = 0;
    double a = cpu_now();
    for (long p = 0; p < passes; p++) {
      pass_sum = 0;
      if (tlb)
        for (long i = 0; i < batch; i++) pass_sum += access_tlb(addrs[i]);
      else
        for (long i = 0; i < batch; i++) pass_sum += walk(addrs[i]);
    }
    double b = cpu_now();
    printf("{\"cpuSeconds\":%.6f,\"refsPerAccess\":%.4f,\"hpaSum\":%llu}\n", b - a, (double)refs / ((double)passes * batch),
           (unsigned long long)pass_sum);
    fflush(stdout);
  }
  return 0;
}
