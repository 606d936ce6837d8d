// SPDX-License-Identifier: MIT
// The trace files the bundled examples name (examples/trace-replay.yaml replays
// traces/sort.mvt.gz), shipped beside the page as assets and fetched only when a scenario
// names one, so the example runs in the browser as `memvirt run` runs it.

const URLS: Record<string, string> = Object.fromEntries(
  Object.entries(
    import.meta.glob("../../examples/traces/sort.mvt.gz", { query: "?url", import: "default", eager: true }) as Record<string, string>,
  ).map(([path, url]) => [path.slice(path.lastIndexOf("/") + 1), url]),
);

/** File names (without directories) of the trace steps in a scenario's text. */
export function tracesNamed(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\bfile:\s*["']?([^\s,}"']+)/g)) {
    const path = m[1]!;
    out.push(path.slice(path.lastIndexOf("/") + 1));
  }
  return out;
}

/** The bundled trace files a scenario names, fetched; names the page does not ship are left out (the worker then says to attach them). */
export async function bundledFiles(text: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const name of tracesNamed(text)) {
    const url = URLS[name];
    if (!url || out[name]) continue;
    const res = await fetch(url);
    if (!res.ok) throw new Error(`could not load the bundled trace ${name} (${res.status} ${res.statusText})`);
    out[name] = new Uint8Array(await res.arrayBuffer());
  }
  return out;
}
