// SPDX-License-Identifier: MIT
// The page's handle on a simulation worker: send a request, get its replies, cancel it.
// Cancelling terminates the worker (the engine runs synchronously inside it) and starts a
// fresh one, so a cancelled run leaves nothing behind.

import type { WorkerReply, WorkerRequest } from "./protocol.js";

type Handler = (reply: WorkerReply) => void;

// A distributive Omit, so each request kind keeps its own fields.
type RequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, "id"> : never) : never;

export class SimClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly handlers = new Map<number, Handler>();

  private spawn(): Worker {
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "memvirt-sim" });
    w.onmessage = (ev: MessageEvent<WorkerReply>) => this.handlers.get(ev.data.id)?.(ev.data);
    w.onerror = (ev) => {
      ev.preventDefault();
      for (const [id, h] of this.handlers) h({ type: "error", id, message: `the simulation worker failed: ${ev.message}` });
      this.handlers.clear();
      this.worker?.terminate();
      this.worker = null;
    };
    return w;
  }

  /** Sends `req`; `onReply` gets every reply to it. Returns the request id. */
  send(req: RequestBody, onReply: Handler): number {
    const id = this.nextId++;
    this.worker ??= this.spawn();
    this.handlers.set(id, onReply);
    this.worker.postMessage({ ...req, id } as WorkerRequest);
    return id;
  }

  /** Stops listening to `id` (its reply came, or nobody wants it any more). */
  done(id: number): void {
    this.handlers.delete(id);
  }

  /** Stops whatever the worker is doing: terminates it; the next request starts a new one. */
  cancel(): void {
    this.worker?.terminate();
    this.worker = null;
    this.handlers.clear();
  }
}
