// SPDX-License-Identifier: MIT
// The `--events-*` options of `memvirt run`: which events `--events` writes (kinds, an
// address range, one page's life, the first N) and how (JSONL, numbers numeric; or text, a
// line per event with addresses in hex).

import type { SimEvent } from "../hw/events.js";
import { EventFilter, type EventFilterOptions, eventText, matchKinds } from "../sim/event_filter.js";
import { suggestion } from "../sim/scenario_suggest.js";
import { EVENT_KINDS } from "../sim/sim_events.js";
import { UsageError } from "./errors.js";

export interface EventsCliOptions {
  eventsKinds?: string;
  eventsRange?: string;
  eventsPage?: string;
  eventsFirst?: string;
  eventsFormat?: string;
}

/** A non-negative address, hex (0x...) or decimal, exact as a double. */
function parseAddr(flag: string, text: string): number {
  const t = text.trim().replaceAll("_", "");
  const v = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : /^[0-9]+$/.test(t) ? Number(t) : Number.NaN;
  if (!Number.isSafeInteger(v)) throw new UsageError(`${flag}: '${text}' is not an address; give one in hex (0x7fff00000000) or decimal`);
  return v;
}

function parseKinds(text: string): string[] {
  const kinds = text.split(",").map((k) => k.trim());
  for (const k of kinds) {
    if (matchKinds(k).length > 0) continue;
    const all = Object.keys(EVENT_KINDS);
    const layers = [...new Set(all.map((x) => `${x.split(".")[0]}.*`))];
    throw new UsageError(
      `--events-kinds: '${k}' names no event kind;${suggestion(k, [...all, ...layers])} the kinds are listed in docs/cli-output.md (or use ${layers.join(", ")})`,
    );
  }
  return kinds;
}

/** The filter the options ask for, or null when none was given. UsageError when one is malformed or --events is missing. */
export function eventFilterOptions(o: EventsCliOptions, events: string | undefined): EventFilterOptions | null {
  const given = [o.eventsKinds, o.eventsRange, o.eventsPage, o.eventsFirst, o.eventsFormat].some((x) => x !== undefined);
  if (!given) return null;
  if (events === undefined)
    throw new UsageError(
      "--events-kinds, --events-range, --events-page, --events-first and --events-format shape --events; give --events <file> (or - for standard output) too",
    );
  const f: EventFilterOptions = {};
  if (o.eventsKinds !== undefined) f.kinds = parseKinds(o.eventsKinds);
  if (o.eventsRange !== undefined) {
    const m = /^([^-]+)-([^-]+)$/.exec(o.eventsRange.trim());
    if (!m) throw new UsageError(`--events-range: '${o.eventsRange}' is not a range; give lo-hi, like 0x100000-0x200000 (hi excluded)`);
    const lo = parseAddr("--events-range", m[1]!);
    const hi = parseAddr("--events-range", m[2]!);
    if (hi <= lo) throw new UsageError(`--events-range: ${o.eventsRange} is empty; the end (excluded) must be above the start`);
    f.range = { lo, hi };
  }
  if (o.eventsPage !== undefined) {
    const m = /^(gpa|hva)[:=](.+)$/.exec(o.eventsPage.trim());
    if (!m) throw new UsageError(`--events-page: '${o.eventsPage}' names no page; give gpa:ADDR or hva:ADDR, like gpa:0x100000`);
    f.page = { space: m[1] as "gpa" | "hva", addr: parseAddr("--events-page", m[2]!) };
  }
  if (o.eventsFirst !== undefined) {
    const t = o.eventsFirst.trim().replaceAll("_", "");
    if (!/^[1-9][0-9]*$/.test(t)) throw new UsageError(`--events-first: '${o.eventsFirst}' is not a count; give a whole number like 100`);
    f.first = Number(t);
  }
  if (o.eventsFormat !== undefined && o.eventsFormat !== "jsonl" && o.eventsFormat !== "text")
    throw new UsageError(
      `--events-format: '${o.eventsFormat}' is not a format; use jsonl (the default, numbers numeric) or text (a line per event, addresses in hex)`,
    );
  return f;
}

/** The listener that writes the events the options ask for. */
export function eventWriter(o: EventsCliOptions, filter: EventFilterOptions | null, write: (s: string) => void): (e: SimEvent) => void {
  const text = o.eventsFormat === "text";
  const line = text ? (e: SimEvent) => `${eventText(e)}\n` : (e: SimEvent) => `${JSON.stringify(e)}\n`;
  if (filter === null) return (e) => write(line(e));
  const f = new EventFilter(filter);
  return (e) => {
    if (f.keep(e)) write(line(e));
  };
}
