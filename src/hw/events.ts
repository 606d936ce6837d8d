// SPDX-License-Identifier: MIT
// The event stream: a kind and a few numbers, produced only when someone listens (the
// visualizer, `--events`, a test). Kinds name the steps of SEED-PATHS.md; each layer
// declares the kinds it emits with a sentence, so a narration can be written from them.

export interface SimEvent {
  /** Kind, e.g. "host.fault", "kvm.ept_violation", "host.notifier.start". */
  kind: string;
  /** When it happened: the number of guest accesses completed before it (the engine's clock), stamped by the bus. */
  t: number;
  /** A few named numbers (addresses, frames, counts); no objects. */
  [field: string]: number | string;
}

export type EventListener = (e: SimEvent) => void;

export interface EventKindDesc {
  kind: string;
  /** What happened, in plain words. */
  description: string;
  /** The kernel function (or hardware step) it stands for. */
  mirrors: string;
}

/**
 * One bus per simulated machine. Emitters test `bus.on` before building an event, so the
 * stream costs one branch when nobody listens.
 */
export class EventBus {
  on = false;
  /** The clock the bus stamps events with (guest accesses done); the engine keeps it current. */
  now = 0;
  private listeners: EventListener[] = [];

  listen(l: EventListener): () => void {
    this.listeners.push(l);
    this.on = true;
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
      this.on = this.listeners.length > 0;
    };
  }

  /** Emits `kind` with `fields`; callers guard with `if (bus.on)`. */
  emit(kind: string, fields: Record<string, number | string> = {}): void {
    const e = { ...fields, kind, t: this.now } as SimEvent;
    for (const l of this.listeners) l(e);
  }
}
