// SPDX-License-Identifier: MIT
// QEMU's dirty-page sync for migration: memory_global_dirty_log_start sets KVM_MEM_LOG_DIRTY_PAGES
// on every RAM memslot (kvm_log_start), migration_bitmap_sync reads KVM_GET_DIRTY_LOG per slot
// (kvm_physical_sync_dirty_bitmap) and ORs in what QEMU itself wrote into guest RAM
// (cpu_physical_memory_set_dirty_range: here, its disk reads).
// simplified: KVM_GET_DIRTY_LOG without manual protect (the log is cleared and re-protected in
// the same call); QEMU 4.2+ uses KVM_CLEAR_DIRTY_LOG in chunks with initially-set.

import { KVM_MEM_LOG_DIRTY_PAGES, dirtyBitmapWords, kvmGetDirtyLog, kvmSetMemslotFlags } from "../kvm/dirty_log.js";
import type { DirtySource } from "./migration.js";
import type { QemuVm } from "./vm.js";

class KvmDirtySource implements DirtySource {
  private readonly words: Uint32Array;
  constructor(private readonly vm: QemuVm) {
    const max = Math.max(...vm.kvm.memslots.slots.map((s) => s.npages));
    this.words = new Uint32Array(dirtyBitmapWords(max));
  }

  start(): void {
    for (const s of this.vm.kvm.memslots.slots) kvmSetMemslotFlags(this.vm.kvm, s.id, KVM_MEM_LOG_DIRTY_PAGES);
    this.vm.dirtyMemoryMigration = new Uint8Array(this.vm.cfg.ram / 4096);
  }

  sync(out: Uint8Array): number {
    let n = 0;
    let base = 0;
    // Slots in ram_addr order (QemuVm adds them in the order of its ranges).
    for (const s of [...this.vm.kvm.memslots.slots].sort((a, b) => a.id - b.id)) {
      this.words.fill(0);
      kvmGetDirtyLog(this.vm.kvm, s.id, this.words);
      for (let i = 0; i < s.npages; i++) {
        if ((this.words[i >>> 5]! & (1 << (i & 31))) === 0) continue;
        if (out[base + i] === 0) n++;
        out[base + i] = 1;
      }
      base += s.npages;
    }
    const own = this.vm.dirtyMemoryMigration;
    if (own !== null) {
      for (let i = 0; i < own.length; i++) {
        if (own[i] === 0) continue;
        own[i] = 0;
        if (out[i] === 0) n++;
        out[i] = 1;
      }
    }
    return n;
  }

  stop(): void {
    for (const s of this.vm.kvm.memslots.slots) kvmSetMemslotFlags(this.vm.kvm, s.id, 0);
    this.vm.dirtyMemoryMigration = null;
  }
}

/** The pre-copy dirty source of `vm`: KVM's dirty log. */
export function kvmDirtySource(vm: QemuVm): DirtySource {
  return new KvmDirtySource(vm);
}
