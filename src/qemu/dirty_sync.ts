// SPDX-License-Identifier: MIT
// QEMU's dirty-page sync for migration (accel/kvm/kvm-all.c kvm_log_start/kvm_log_sync ->
// KVM_GET_DIRTY_LOG per memslot).
// interim: no KVM dirty log on this branch yet, so pre-copy has no dirty source.

import type { DirtySource } from "./migration.js";
import type { QemuVm } from "./vm.js";

export function kvmDirtySource(_vm: QemuVm): DirtySource | null {
  return null;
}
