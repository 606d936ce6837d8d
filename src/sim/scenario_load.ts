// SPDX-License-Identifier: MIT
// Scenario text (YAML or JSON) to a typed, fully defaulted Scenario, or a ScenarioError
// listing every problem as `file:line:col: path: what is wrong; what would be valid`.
// The yaml library keeps a source range on every node, so each schema issue's path is
// looked up in the document to find its line and column.

import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { type Scenario, keysAt, ONE_KEY_PARAM, type ParamInfo, paramAt, scenarioSchema } from "./scenario_schema.js";
import { didYouMean, suggestion } from "./scenario_suggest.js";
import { COUNT_HINT, SIZE_HINT, tryParseAddress, tryParseCount, tryParseSize } from "./size.js";

export { DEFAULT_SCENARIO_YAML } from "./scenario_default.js";

/** One problem in a scenario file. Line and column are 1-based. */
export interface ScenarioIssue {
  /** Where in the scenario: `vms[0].ram`; "" for the file as a whole (YAML syntax). */
  path: string;
  line: number;
  column: number;
  /** What is wrong; what would be valid. */
  message: string;
}

/** A scenario that does not validate: every problem found, in file order. */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
  constructor(
    readonly fileName: string,
    readonly issues: readonly ScenarioIssue[],
  ) {
    super(formatIssues(fileName, issues));
  }

  /** One line per problem: `demo.yaml:3:11: vms[0].ram: <what is wrong>; <what would be valid>`. */
  format(): string {
    return formatIssues(this.fileName, this.issues);
  }
}

function formatIssues(fileName: string, issues: readonly ScenarioIssue[]): string {
  return issues.map((i) => `${fileName}:${i.line}:${i.column}: ${i.path === "" ? "" : `${i.path}: `}${i.message}`).join("\n");
}

export interface LoadOptions {
  /** Event names of the cost table; when given, a `cost` key not among them is an error (with "did you mean"). */
  costEvents?: readonly string[];
  /** Values to set before validation, by path (`vms[0].mmu`), as `--compare` variants do. */
  overrides?: Readonly<Record<string, unknown>>;
  /**
   * Checks of the validated scenario that need what the core has not (files, the command's
   * options): each problem's path is located in the file like a schema issue's.
   */
  check?: (s: Scenario) => readonly { path: readonly (string | number)[]; message: string }[];
}

type Path = (string | number)[];

/** `["vms", 0, "ram"]` -> `vms[0].ram`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** `vms[0].ram` -> `["vms", 0, "ram"]` (also `cost["vm exit"]`). */
export function parsePath(text: string): Path {
  const path: Path = [];
  const re = /(?:^|\.)([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while (end < text.length && (m = re.exec(text)) !== null) {
    path.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3]!) as string)));
    end = re.lastIndex;
  }
  if (end !== text.length || path.length === 0) throw new RangeError(`"${text}" is not a key path; a path like vms[0].mmu`);
  return path;
}

// ---- Positions -----------------------------------------------------------------------

interface Located {
  path: Path;
  message: string;
  /** Point at the key itself (unknown keys) rather than its value. */
  atKey?: boolean;
}

class Locator {
  constructor(
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter,
  ) {}

  pos(offset: number): { line: number; column: number } {
    const p = this.lines.linePos(offset);
    return p.line === 0 ? { line: 1, column: 1 } : { line: p.line, column: p.col };
  }

  /** Position of the deepest node along `path` (the value, or the key with `atKey`). */
  find(path: Path, atKey = false): { line: number; column: number } {
    let node: unknown = this.doc?.contents;
    let best: Node | undefined = node as Node | undefined;
    for (let i = 0; i < path.length && node; i++) {
      const seg = path[i]!;
      if (isAlias(node) && this.doc) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
        if (!pair) break;
        if (atKey && i === path.length - 1 && isScalar(pair.key)) {
          best = pair.key;
          break;
        }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") node = node.items[seg];
      else break;
      if (node && (node as Node).range) best = node as Node;
    }
    return best?.range ? this.pos(best.range[0]) : { line: 1, column: 1 };
  }
}

// ---- Messages for zod's own issues ---------------------------------------------------

/** Marks issues for which the schema gave no message of its own; they are worded here, with the full path. */
const UNWORDED = "\u0000unworded";

function show(input: unknown): string {
  if (input === undefined) return "nothing";
  if (input === null) return "null";
  if (typeof input === "string") return JSON.stringify(input);
  if (Array.isArray(input)) return "a list";
  if (typeof input === "object") return "a mapping";
  return String(input);
}

const KIND_PARSE: Readonly<Record<string, (v: unknown) => { ok: boolean; message?: string }>> = {
  size: tryParseSize,
  count: tryParseCount,
  address: tryParseAddress,
};

interface DefLike {
  type: string;
  entries?: Record<string, string | number>;
  values?: unknown[];
  format?: string;
}
const defOf = (info: ParamInfo) => (info.schema as unknown as { _zod: { def: DefLike } })._zod.def;

/** Allowed values of an enum or literal declaration, or undefined. */
function choices(info: ParamInfo | undefined): string[] | undefined {
  if (!info) return undefined;
  const d = defOf(info);
  if (d.type === "enum") return Object.values(d.entries!).map(String);
  if (d.type === "literal") return d.values!.map(String);
  return undefined;
}

/** "what would be valid" for the value at a path; `short` leaves out the description. */
function validHint(info: ParamInfo | undefined, short = false): string {
  if (!info) return "see docs/scenario.md";
  const kind = info.meta.kind;
  if (kind === "size" || kind === "address") return short ? `a ${kind} like ${kind === "size" ? "512MiB" : "0x200000"}` : SIZE_HINT;
  if (kind === "count") return short ? "a count like 1_000_000" : COUNT_HINT;
  const values = choices(info);
  if (values) return `one of ${values.join(", ")}`;
  const d = defOf(info);
  if (d.type === "boolean") return "true or false";
  const words: Record<string, string> = { string: "a string", array: "a list", object: "a mapping", record: "a mapping" };
  const what = d.type === "number" ? (d.format === "safeint" ? "a whole number" : "a number") : (words[d.type] ?? d.type);
  return short || !info.meta.description ? what : `${what} (${info.meta.description})`;
}

function typeWord(info: ParamInfo | undefined, expected: string): string {
  if (info?.meta.kind) return `a ${info.meta.kind}`;
  switch (expected) {
    case "object":
    case "record":
      return "a mapping";
    case "array":
      return "a list";
    case "int":
    case "number":
      return "a number";
    case "boolean":
      return "a boolean";
    default:
      return `a ${expected}`;
  }
}

function wordIssue(iss: z.core.$ZodIssue, input: unknown): Located[] {
  const path = iss.path as Path;
  if (iss.message !== UNWORDED) {
    return [{ path, message: iss.message }];
  }
  const info = paramAt(path);
  const last = path[path.length - 1];
  const field = typeof last === "string" ? last : "value";
  switch (iss.code) {
    case "unrecognized_keys": {
      const valid = keysAt(path);
      return iss.keys.map((k) => {
        const guess = suggestion(k, valid);
        return {
          path: [...path, k],
          atKey: true,
          message: `unknown key "${k}";${guess || ` valid keys here: ${valid.join(", ")}`}`,
        };
      });
    }
    case "invalid_type":
    case "invalid_union": {
      if (input === undefined) {
        if (path.length === 0) return [{ path, message: "the file holds no scenario; a mapping with host and vms (see docs/scenario.md)" }];
        const desc = info?.meta.description;
        return [{ path, message: `missing; add ${field}: ${validHint(info, true)}${desc ? ` (${desc})` : ""}` }];
      }
      const parse = info?.meta.kind ? KIND_PARSE[info.meta.kind] : undefined;
      const parsed = parse?.(input);
      if (parsed && !parsed.ok && parsed.message) return [{ path, message: parsed.message }];
      if (path.length === 0)
        return [{ path, message: `the file holds ${show(input)}; a mapping with host and vms (see docs/scenario.md)` }];
      const expected = iss.code === "invalid_type" ? iss.expected : "value";
      return [{ path, message: `${show(input)} is not ${typeWord(info, expected)}; ${validHint(info)}` }];
    }
    case "invalid_value": {
      const values = iss.values.map(String);
      const guess = typeof input === "string" || typeof input === "number" ? didYouMean(String(input), values) : undefined;
      const valid = `one of ${values.join(", ")}`;
      return [
        { path, message: `${show(input)} is not a valid ${field}; ${guess === undefined ? valid : `did you mean "${guess}"? (${valid})`}` },
      ];
    }
    case "too_small":
      return [{ path, message: `${show(input)} is too small; at least ${iss.minimum}${iss.origin === "array" ? " item(s)" : ""}` }];
    case "too_big":
      return [{ path, message: `${show(input)} is too large; at most ${iss.maximum}${iss.origin === "array" ? " item(s)" : ""}` }];
    default:
      return [{ path, message: `${show(input)} is not valid; ${validHint(info)}` }];
  }
}

function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function schemaIssues(error: z.ZodError, root: unknown): Located[] {
  const issues = error.issues;
  // An unknown key and "not exactly one step kind" at the same place are one mistake.
  const unknownAt = new Set(issues.filter((i) => i.code === "unrecognized_keys").map((i) => formatPath(i.path)));
  const out: Located[] = [];
  for (const iss of issues) {
    const oneKey = iss.code === "custom" && (iss.params as Record<string, unknown> | undefined)?.[ONE_KEY_PARAM] === true;
    if (oneKey && unknownAt.has(formatPath(iss.path))) continue;
    const input = "input" in iss ? iss.input : valueAt(root, iss.path as Path);
    out.push(...wordIssue(iss, input));
  }
  return out;
}

function costIssues(root: unknown, events: readonly string[]): Located[] {
  const cost = valueAt(root, ["cost"]);
  if (cost === null || typeof cost !== "object" || Array.isArray(cost)) return [];
  const known = new Set(events);
  return Object.keys(cost)
    .filter((k) => !known.has(k))
    .map((k) => ({
      path: ["cost", k],
      atKey: true,
      message: `no cost event named "${k}";${suggestion(k, events) || ` events: ${events.join(", ")}`}`,
    }));
}

// ---- Loading -------------------------------------------------------------------------

function dirnameOf(fileName: string): string {
  const i = Math.max(fileName.lastIndexOf("/"), fileName.lastIndexOf("\\"));
  return i < 0 ? "" : fileName.slice(0, i + 1);
}

function resolveTraces(s: Scenario, fileName: string): Scenario {
  const dir = dirnameOf(fileName);
  if (dir === "") return s;
  for (const vm of s.vms) {
    for (const p of vm.processes) {
      p.steps = p.steps.map((st) =>
        st.kind === "trace" && !/^([/\\]|[A-Za-z]:[/\\])/.test(st.file) ? { ...st, path: dir + st.file } : st,
      );
    }
  }
  return s;
}

function jsonSyntaxIssue(text: string, e: Error, at: Locator): ScenarioIssue {
  const m = /at position (\d+)/.exec(e.message);
  const offset = m ? Number(m[1]) : text.length;
  const what = e.message.replace(/\s*in JSON at position \d+.*$/, "").replace(/^Unexpected end of JSON input$/, "the JSON ends early");
  return { path: "", ...at.pos(offset), message: `${what}; the file must be valid JSON` };
}

/**
 * Parse and validate a scenario. `text` is YAML (1.2) or JSON; `fileName` is used in
 * messages and to resolve trace paths. Throws ScenarioError listing every problem.
 */
export function loadScenario(text: string, fileName: string, options: LoadOptions = {}): Scenario {
  const lines = new LineCounter();
  const isJsonFile = fileName.toLowerCase().endsWith(".json");
  let source = text;
  if (isJsonFile || /^\s*[{[]/.test(text)) {
    try {
      JSON.parse(text.replace(/^\uFEFF/, ""));
      // Outside strings, JSON's tabs are only whitespace, which YAML forbids as indentation.
      source = text.replace(/\t/g, " ");
    } catch (e) {
      if (isJsonFile) {
        lines.addNewLine(0);
        for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines.addNewLine(i + 1);
        throw new ScenarioError(fileName, [jsonSyntaxIssue(text, e as Error, new Locator(undefined, lines))]);
      }
    }
  }
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = new Locator(doc, lines);
  const syntax = [...doc.errors, ...doc.warnings].map(
    (e): ScenarioIssue => ({
      path: "",
      ...at.pos(e.pos[0]),
      message: `${e.message.split("\n")[0]}; the file must be valid ${isJsonFile ? "JSON" : "YAML"}`,
    }),
  );
  if (syntax.length > 0) throw new ScenarioError(fileName, sortIssues(syntax));

  const located: Located[] = [];
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    try {
      const path = parsePath(key);
      missingItem(doc, path);
      doc.setIn(path, doc.createNode(value));
    } catch (e) {
      located.push({ path: [], message: `override ${key}: ${(e as Error).message}` });
    }
  }
  const aliases = unresolvedAliases(doc, at);
  if (aliases.length > 0) throw new ScenarioError(fileName, aliases);
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    located.push({ path: [], message: `${(e as Error).message}; fewer or smaller aliases` });
  }
  if (located.length === 0) {
    const r = scenarioSchema.safeParse(root ?? undefined, { reportInput: true, error: () => UNWORDED });
    if (!r.success) located.push(...schemaIssues(r.error, root));
    if (options.costEvents) located.push(...costIssues(root, options.costEvents));
    if (located.length === 0 && r.success) {
      const s = resolveTraces(r.data, fileName);
      for (const i of options.check?.(s) ?? []) located.push({ path: [...i.path], message: i.message });
      if (located.length === 0) return s;
    }
  }
  throw new ScenarioError(
    fileName,
    sortIssues(located.map((l) => ({ path: formatPath(l.path), ...at.find(l.path, l.atKey), message: l.message }))),
  );
}

/** Throws if `path` indexes a list past its end: an override sets an item, it does not add one (a phantom VM). */
function missingItem(doc: Document, path: Path): void {
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length && node; i++) {
    const seg = path[i]!;
    if (isAlias(node)) node = node.resolve(doc);
    if (typeof seg === "number") {
      const n = isSeq(node) ? node.items.length : 0;
      if (seg >= n) {
        const list = formatPath(path.slice(0, i));
        throw new RangeError(
          `the scenario has no ${list}[${seg}] (${n === 0 ? `no ${list}` : `${list}[0] to ${list}[${n - 1}]`}); name an item that exists`,
        );
      }
      node = (node as { items: unknown[] }).items[seg];
    } else node = isMap(node) ? node.get(seg, true) : undefined;
  }
}

/** Aliases (*name) with no anchor (&name) before them: the yaml library only notices when converting. */
function unresolvedAliases(doc: Document, at: Locator): ScenarioIssue[] {
  const out: ScenarioIssue[] = [];
  visit(doc, {
    Alias(_, node) {
      if (node.resolve(doc) === undefined) {
        out.push({
          path: "",
          ...at.pos(node.range?.[0] ?? 0),
          message: `alias *${node.source} has no anchor; define &${node.source} before using *${node.source}`,
        });
      }
    },
  });
  return out;
}

function sortIssues(issues: ScenarioIssue[]): ScenarioIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}
