// SPDX-License-Identifier: MIT
// The event kinds the engine emits, and every layer's kinds merged: the map of the machine's
// bus, and what the narration and `--events` readers look kinds up in.

import type { EventDecls, EventMapOf } from "../hw/events.js";
import { GUEST_EVENTS } from "../guest/guest_events.js";
import { HOST_EVENTS } from "../host/host_events.js";
import { KVM_EVENTS } from "../kvm/kvm_events.js";

export const SIM_EVENTS = {
  "sim.step": {
    description: "The guest process starts its next workload step.",
    mirrors: "(the workload)",
    fields: { vm: "string", process: "string", step: "number" },
  },
  "sim.timeline": {
    description: "A timeline action runs on the host side.",
    mirrors: "(the scenario's timeline)",
    fields: { vm: "string", action: "string", advice: "string", gpa: "number", size: "number" },
  },
  "sim.balloon": {
    description: "The host set a VM's balloon target and the guest's virtio-balloon driver moved towards it.",
    mirrors: "virtio_balloon_to_target() in QEMU, update_balloon_size_func() in the guest",
    fields: { vm: "string", targetPages: "number", actualPages: "number" },
  },
  "sim.phase": {
    description: "Every process that names the phase reached its marker: the counters are snapshot and the next phase begins.",
    mirrors: "(the scenario's phase markers; KVM selftests' iterations)",
    fields: { phase: "string", accesses: "number" },
  },
} as const satisfies EventDecls;

/** Every kind the machine's bus carries, each declared by the layer that emits it. */
export const EVENT_KINDS = { ...HOST_EVENTS, ...KVM_EVENTS, ...GUEST_EVENTS, ...SIM_EVENTS } as const satisfies EventDecls;

export type EventMap = EventMapOf<typeof EVENT_KINDS>;
export type EventKind = keyof EventMap;
