// SPDX-License-Identifier: MIT
// The event stream: a kind and a few numbers, produced only when someone listens (the
// visualizer, `--events`, a test). Kinds name the steps of SEED-PATHS.md. Each layer declares
// the kinds it emits once, in a table with a sentence, the kernel function and the fields'
// types; its event map is derived from the table, and its bus accepts only those kinds with
// exactly those fields. The layer that holds them all (sim) merges the tables.

export interface SimEvent {
  /** Kind, e.g. "host.fault", "kvm.exit", "host.notifier.start". */
  kind: string;
  /** When it happened: the number of guest accesses completed before it (the engine's clock), stamped by the bus. */
  t: number;
  /** A few named numbers (addresses, frames, counts); no objects. */
  [field: string]: number | string;
}

export type EventListener = (e: SimEvent) => void;

/** A field's type; a trailing `?` marks a field only some emitters of the kind set. */
export type EventFieldType = "number" | "string" | "number?" | "string?";

export interface EventKindDecl {
  /** What happened, in plain words. */
  readonly description: string;
  /** The kernel function (or hardware step) it stands for. */
  readonly mirrors: string;
  /** The event's fields, in the order emitters write them; `kind` and `t` are the bus's. */
  readonly fields: { readonly [field: string]: EventFieldType } & { readonly kind?: never; readonly t?: never };
}

/** A layer's declarations, keyed by kind. */
export type EventDecls = { readonly [kind: string]: EventKindDecl };

/** One declaration with its kind, as a narration reads it. */
export interface EventKindDesc extends EventKindDecl {
  readonly kind: string;
}

type FieldValue<T> = T extends "number" | "number?" ? number : string;
type Required_<F> = { -readonly [K in keyof F as F[K] extends `${string}?` ? never : K]: FieldValue<F[K]> };
type Optional_<F> = { -readonly [K in keyof F as F[K] extends `${string}?` ? K : never]?: FieldValue<F[K]> };
type Flat<T> = { [K in keyof T]: T[K] };

/** Each kind's fields as a type: `{ "host.fault": { mm: number; hva: number; write: number } }`. */
export type EventMapOf<D extends EventDecls> = { -readonly [K in keyof D]: Flat<Required_<D[K]["fields"]> & Optional_<D[K]["fields"]>> };

/** The map of a bus that takes any kind (tests that listen to everything). */
export type AnyEventMap = { [kind: string]: Record<string, number | string> };

/**
 * One bus per simulated machine, typed by the kinds the holder may emit (`EventBus<HostEventMap>`
 * in the host layer). Emitters test `bus.on` before building an event, so the stream costs one
 * branch when nobody listens.
 */
export class EventBus<M = AnyEventMap> {
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
  emit<K extends keyof M & string>(kind: K, fields: M[K]): void {
    const e = { ...(fields as object), kind, t: this.now } as SimEvent;
    for (const l of this.listeners) l(e);
  }
}
