// SPDX-License-Identifier: MIT
// Output files, one rule for every command:
// - `-` is standard output, for any output option, and for one option at most.
// - A regular file or a new path (symlinks followed to their target) is written to a
//   temporary file in the target's directory during the run, then fsync'd and renamed over
//   the target: the target is never partial, and a symlink stays a symlink.
// - A character or block device or a FIFO is opened and written in place, never renamed
//   over, at commit (opening a FIFO waits for a reader). Its data, and standard output's,
//   is spooled to a temporary file in the system's temp directory until then.
// - All outputs of a command are checked and prepared before the work and committed
//   together after it; on failure or interruption none is, and no temporary file is left.
// - An output that is an input of the same command (same file, via any link) is refused.
// Temporary files are named `.<name>.memvirt-<pid>-<random>.tmp`; one whose process is dead
// (killed with SIGKILL) is removed by the next command that writes to its directory.

import {
  type Stats,
  accessSync,
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { EXIT_RUN_FAILED, UsageError } from "./errors.js";
import type { Out } from "./format.js";
import { onInterrupt } from "./interrupt.js";

export const STDOUT = "-";

export interface OutputRequest {
  /** The option as the user wrote it (`--json`, `-o/--output`), for messages. */
  option: string;
  /** A path, or `-` for standard output. */
  path: string;
}

export type OutputKind = "stdout" | "file" | "device";

export interface PlannedOutput extends OutputRequest {
  kind: OutputKind;
  /** The path with every symlink followed (`-` for standard output). */
  target: string;
  /** Permission bits of the regular file being replaced, which the new one keeps. */
  mode: number | null;
}

/** A failure to write an output after the run: the run's result is lost, exit 1. */
export class OutputError extends UsageError {
  constructor(message: string) {
    super(message, EXIT_RUN_FAILED);
  }
}

export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "it is a directory";
  if (code === "ENOTDIR") return "a part of the path is not a directory";
  if (code === "ENOSPC") return "no space left on device";
  if (code === "EROFS") return "read-only file system";
  if (code === "EPIPE") return "the reader closed the pipe";
  return (e as Error).message;
}

const TEMP_FILE = /^\..+\.memvirt-(\d+)-[0-9a-z]+\.tmp$/;
/** The scratch directories of `trace record` (see trace_cmd.ts). */
const TEMP_DIR = /^memvirt-trace-(\d+)-[0-9A-Za-z]+$/;

/** A temporary name for `name` in `dir`, which removeStaleTemps recognizes. */
export function tempName(dir: string, name: string): string {
  return join(dir, `.${name}.memvirt-${process.pid}-${Math.random().toString(36).slice(2, 8) || "0"}.tmp`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the temporary files (and `trace record` directories) in `dir` whose process is dead. */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_FILE.exec(name) ?? TEMP_DIR.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {}
  }
  return removed;
}

/** The path with symlinks followed, also a dangling one (to the path it would create). */
function followLinks(req: OutputRequest): string {
  let cur = resolve(req.path);
  for (let hops = 0; hops < 40; hops++) {
    let st: Stats;
    try {
      st = lstatSync(cur);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return cur;
      throw new UsageError(`${req.option} ${req.path}: cannot write there (${describeFsError(e)}); give another path`);
    }
    if (!st.isSymbolicLink()) return cur;
    cur = resolve(dirname(cur), readlinkSync(cur));
  }
  throw new UsageError(`${req.option} ${req.path}: too many levels of symbolic links; give another path`);
}

function checkDirectory(req: OutputRequest, target: string): void {
  const dir = dirname(target);
  let st: Stats;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(
      `${req.option} ${req.path}: the directory ${dir} does not exist; create it (mkdir -p ${dir}) or give another path`,
    );
  }
  if (!st.isDirectory()) throw new UsageError(`${req.option} ${req.path}: ${dir} is not a directory; give another path`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`${req.option} ${req.path}: cannot write in ${dir} (${describeFsError(e)}); give a path in a writable directory`);
  }
}

/**
 * Checks where each output would go, writing nothing: `-` at most once, the directory of a
 * file exists and is writable, a file is not one of `inputs` (compared as files: symlinks
 * and hard links too), no two outputs share a file, sockets and directories refused.
 * Throws UsageError (exit 2) naming the option and the fix.
 */
export function checkOutputPaths(requests: readonly OutputRequest[], inputs: readonly string[]): PlannedOutput[] {
  const inputIds = new Map<string, string>();
  for (const input of inputs) {
    try {
      const st = statSync(input);
      if (st.isFile()) inputIds.set(`${st.dev}:${st.ino}`, input);
    } catch {}
  }
  const planned: PlannedOutput[] = [];
  const taken = new Map<string, string>();
  let stdoutBy: string | null = null;
  for (const req of requests) {
    if (req.path === STDOUT) {
      if (stdoutBy !== null)
        throw new UsageError(`${stdoutBy} and ${req.option} both write to standard output (-); give one of them a file name`);
      stdoutBy = req.option;
      planned.push({ ...req, kind: "stdout", target: STDOUT, mode: null });
      continue;
    }
    if (req.path === "") throw new UsageError(`${req.option}: an empty path; give a file name, or - for standard output`);
    const target = followLinks(req);
    let st: Stats | null = null;
    try {
      st = statSync(target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR")
        throw new UsageError(`${req.option} ${req.path}: cannot write there (${describeFsError(e)}); give another path`);
    }
    let kind: OutputKind;
    let key = target;
    if (st === null || st.isFile()) {
      checkDirectory(req, target);
      kind = "file";
      if (st !== null) {
        key = `${st.dev}:${st.ino}`;
        const input = inputIds.get(key);
        if (input !== undefined)
          throw new UsageError(
            `${req.option} ${req.path}: that is ${input === req.path ? "" : `${input}, `}an input of this command, which would be overwritten; give another output file`,
          );
      }
    } else if (st.isDirectory()) {
      throw new UsageError(`${req.option} ${req.path}: is a directory; give a file name in it, like ${join(req.path, "out")}`);
    } else if (st.isSocket()) {
      throw new UsageError(
        `${req.option} ${req.path}: is a socket, which cannot be opened as a file; give -, and pipe standard output to it (e.g. | socat - UNIX-CONNECT:${req.path})`,
      );
    } else {
      try {
        accessSync(target, constants.W_OK);
      } catch (e) {
        throw new UsageError(`${req.option} ${req.path}: cannot write to it (${describeFsError(e)})`);
      }
      kind = "device";
      key = st.isCharacterDevice() ? `${req.option}:${target}` : `${st.dev}:${st.ino}`;
    }
    const other = taken.get(key);
    if (other !== undefined) throw new UsageError(`${other} and ${req.option} both write to ${req.path}; give two different files`);
    taken.set(key, req.option);
    planned.push({ ...req, kind, target, mode: st !== null && kind === "file" ? st.mode & 0o7777 : null });
  }
  return planned;
}

const CHUNK = 1 << 20;

function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One output being written: to its temporary file (a file) or its spool (standard output, a device). */
export class Output {
  /** The temporary file written during the run. */
  readonly temp: string;
  private fd: number;
  private pending: string[] = [];
  private pendingLen = 0;

  constructor(readonly plan: PlannedOutput) {
    const dir = plan.kind === "file" ? dirname(plan.target) : tmpdir();
    this.temp = tempName(dir, plan.kind === "stdout" ? "stdout" : basename(plan.target));
    try {
      this.fd = openSync(this.temp, "wx", plan.kind === "file" ? 0o666 : 0o600);
      if (plan.mode !== null) fchmodSync(this.fd, plan.mode);
    } catch (e) {
      throw new UsageError(
        `${plan.option} ${plan.path}: cannot create a temporary file in ${dir} (${describeFsError(e)}); give a path in a writable directory`,
      );
    }
  }

  get option(): string {
    return this.plan.option;
  }

  /** Appends text or bytes (streamed to the temporary file, never held whole in memory). */
  write(data: string | Uint8Array): void {
    try {
      if (typeof data === "string") {
        this.pending.push(data);
        this.pendingLen += data.length;
        if (this.pendingLen >= CHUNK) this.flush();
      } else {
        this.flush();
        writeAll(this.fd, data);
      }
    } catch (e) {
      if (e instanceof OutputError) throw e;
      throw new OutputError(`cannot write ${this.plan.option} ${this.plan.path}: ${describeFsError(e)} (writing ${this.temp})`);
    }
  }

  /** @internal */
  flush(): void {
    if (this.pendingLen === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    this.pendingLen = 0;
    writeAll(this.fd, Buffer.from(text));
  }

  /** @internal Flushes and closes the temporary file (fsync'd when it becomes the target). */
  close(): void {
    this.flush();
    if (this.plan.kind === "file") fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }

  /** @internal Copies the spool to the device, FIFO or standard output. */
  async deliver(out: Out): Promise<void> {
    const src = openSync(this.temp, "r");
    let dst = -1;
    try {
      const isFifo = this.plan.kind === "device" && statSync(this.plan.target).isFIFO();
      if (this.plan.kind === "device") dst = isFifo ? await this.openFifo(out) : openSync(this.plan.target, constants.O_WRONLY);
      const decoder = new TextDecoder();
      const buf = Buffer.alloc(CHUNK);
      for (;;) {
        const n = readSync(src, buf, 0, CHUNK, null);
        if (n === 0) break;
        if (this.plan.kind === "stdout") {
          if (out.writeBytes) await out.writeBytes(Buffer.from(buf.subarray(0, n)));
          else out.write(decoder.decode(buf.subarray(0, n), { stream: true }));
        } else if (isFifo) await writeNonBlocking(dst, buf.subarray(0, n));
        else writeAll(dst, buf.subarray(0, n));
      }
      if (this.plan.kind === "stdout" && !out.writeBytes) out.write(decoder.decode());
    } finally {
      closeSync(src);
      if (dst >= 0) closeSync(dst);
    }
  }

  /** Opens a FIFO for writing without blocking the event loop (so a signal can still end the wait). */
  private async openFifo(out: Out): Promise<number> {
    const started = Date.now();
    let told = false;
    for (;;) {
      try {
        return openSync(this.plan.target, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENXIO") throw e;
      }
      if (!told && Date.now() - started > 1000) {
        out.error(`memvirt: ${this.plan.option} ${this.plan.path} is a FIFO; waiting for a reader\n`);
        told = true;
      }
      await sleep(20);
    }
  }

  /** @internal Closes and removes the temporary file, if still there. */
  discard(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {}
      this.fd = -1;
    }
    rmSync(this.temp, { force: true });
  }
}

async function writeNonBlocking(fd: number, buf: Uint8Array): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      await sleep(2);
    }
  }
}

/** The outputs of one command: prepared together, committed together or discarded together. */
export class OutputSet {
  private readonly outputs: Output[] = [];
  private state: "open" | "committed" | "discarded" = "open";
  private readonly unregister: () => void;

  constructor(
    plans: readonly PlannedOutput[],
    private readonly out: Out,
  ) {
    this.unregister = onInterrupt(() => this.discardAll());
    try {
      const swept = new Set<string>();
      for (const p of plans) {
        const dir = p.kind === "file" ? dirname(p.target) : tmpdir();
        if (!swept.has(dir)) removeStaleTemps(dir);
        swept.add(dir);
        this.outputs.push(new Output(p));
      }
    } catch (e) {
      this.discardAll();
      throw e;
    }
  }

  /** The output of `option`, or null if it was not requested. */
  get(option: string): Output | null {
    return this.outputs.find((o) => o.option === option) ?? null;
  }

  /** True when one of the outputs is standard output (which then carries nothing else). */
  get toStdout(): boolean {
    return this.outputs.some((o) => o.plan.kind === "stdout");
  }

  /**
   * Writes every output: closes (and fsyncs) the temporary files, delivers devices, FIFOs and
   * standard output, then renames the files over their targets. A failure discards what is
   * left and throws OutputError (exit 1).
   */
  async commitAll(): Promise<void> {
    if (this.state !== "open") throw new Error(`outputs already ${this.state}`);
    let at: Output | null = null;
    try {
      for (const o of this.outputs) {
        at = o;
        o.close();
      }
      for (const o of this.outputs) {
        if (o.plan.kind === "file") continue;
        at = o;
        await o.deliver(this.out);
        o.discard();
      }
      const dirs = new Set<string>();
      for (const o of this.outputs) {
        if (o.plan.kind !== "file") continue;
        at = o;
        renameSync(o.temp, o.plan.target);
        dirs.add(dirname(o.plan.target));
      }
      at = null;
      for (const d of dirs) syncDirectory(d);
      this.state = "committed";
      this.unregister();
    } catch (e) {
      this.discardAll();
      if (e instanceof UsageError || at === null) throw e;
      throw new OutputError(`cannot write ${at.option} ${at.plan.path}: ${describeFsError(e)}; no output was written`);
    }
  }

  /** Removes every temporary file; a no-op after commitAll(). */
  discardAll(): void {
    if (this.state === "committed") return;
    this.state = "discarded";
    this.unregister();
    for (const o of this.outputs) o.discard();
  }
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {}
}

/** Checks and prepares the outputs (nothing is written to a target yet); see the rule above. */
export function prepareOutputs(requests: readonly OutputRequest[], inputs: readonly string[], out: Out): OutputSet {
  return new OutputSet(checkOutputPaths(requests, inputs), out);
}

/** Requests for the options given (undefined: not given; true: standard output). */
export function requests(options: readonly [string, string | true | undefined][]): OutputRequest[] {
  const r: OutputRequest[] = [];
  for (const [option, path] of options) if (path !== undefined) r.push({ option, path: path === true ? STDOUT : path });
  return r;
}
