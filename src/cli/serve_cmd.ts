// SPDX-License-Identifier: MIT
// `memvirt serve [--port n]`: serves the built web visualizer (dist/web, made by `npm run
// build`) on 127.0.0.1 with node:http, and prints the address. The page needs nothing from
// the server but its files: the simulation runs in the browser, in a Web Worker. Text assets go
// brotli- or gzip-compressed by Accept-Encoding; Vite's hashed assets are cached as immutable,
// everything else (index.html) is revalidated.

import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, gzipSync, constants as zlibConstants } from "node:zlib";
import { Command } from "@commander-js/extra-typings";
import { UsageError } from "./errors.js";
import type { Out } from "./format.js";

export const DEFAULT_PORT = 4173;
export const HOST = "127.0.0.1";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
  ".yaml": "text/yaml; charset=utf-8",
  ".gz": "application/gzip",
};

/** Types worth compressing (images and archives already are). */
const COMPRESSIBLE = /^(text\/|application\/(json|javascript|wasm)|image\/svg)/;
/** Smaller files go as they are: the headers would outweigh the saving. */
const MIN_COMPRESS = 1024;

/** Vite names built assets `name-<hash>.ext`: their content never changes under that name. */
export function cacheControl(path: string): string {
  return /\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9.]+$/.test(path) ? "public, max-age=31536000, immutable" : "no-cache";
}

/** brotli if the client takes it, else gzip, else none (q=0 refuses). */
export function pickEncoding(accept: string | undefined): "br" | "gzip" | null {
  const ok = new Set<string>();
  for (const part of (accept ?? "").split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => /^\s*q=([0-9.]+)/.exec(p)?.[1]).find((v) => v !== undefined);
    if (name && (q === undefined || Number(q) > 0)) ok.add(name.trim());
  }
  if (ok.has("br")) return "br";
  if (ok.has("gzip") || ok.has("*")) return "gzip";
  return null;
}

/** Compressed bodies, kept per file, encoding, size and mtime (a rebuild changes them). */
const cache = new Map<string, Buffer>();

function compressed(file: string, encoding: "br" | "gzip"): Buffer {
  const st = statSync(file);
  const key = `${encoding}\u0000${file}\u0000${st.size}\u0000${st.mtimeMs}`;
  let body = cache.get(key);
  if (body === undefined) {
    const raw = readFileSync(file);
    body =
      encoding === "br"
        ? brotliCompressSync(raw, {
            params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: raw.length },
          })
        : gzipSync(raw, { level: 9 });
    cache.set(key, body);
  }
  return body;
}

/** Where the built page is: dist/web beside dist/cli when installed, or the repository's dist/web when run from src/cli. */
export function defaultWebRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(dirname(here)) === "dist" ? join(here, "..", "web") : join(here, "..", "..", "dist", "web");
}

export interface ServeHandle {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Checks that `root` holds a built page; throws UsageError saying how to build it. */
export function checkWebRoot(root: string): void {
  if (!existsSync(join(root, "index.html"))) {
    throw new UsageError(
      `no built web page in ${root} (index.html is missing); build it with \`npm run build\` in the memvirt repository, or give --dir <built page>`,
    );
  }
}

/** Starts the static server on HOST:port (0: any free port). Throws UsageError if the port is taken. */
export async function startServer(root: string, port: number): Promise<ServeHandle> {
  checkWebRoot(root);
  const base = resolve(root);
  const server = createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
      return;
    }
    if (path.endsWith("/")) path += "index.html";
    const file = resolve(base, `.${path}`);
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403, { "content-type": "text/plain" }).end("forbidden\n");
      return;
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const type = TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
    const headers: Record<string, string | number> = {
      "content-type": type,
      "cache-control": cacheControl(path),
      "x-content-type-options": "nosniff",
    };
    const encoding = COMPRESSIBLE.test(type) && size >= MIN_COMPRESS ? pickEncoding(req.headers["accept-encoding"]) : null;
    if (COMPRESSIBLE.test(type)) headers.vary = "accept-encoding";
    if (encoding === null) {
      res.writeHead(200, { ...headers, "content-length": size });
      if (req.method === "HEAD") res.end();
      else createReadStream(file).pipe(res);
      return;
    }
    let body: Buffer;
    try {
      body = compressed(file, encoding);
    } catch {
      res.writeHead(500, { "content-type": "text/plain" }).end("could not read the file\n");
      return;
    }
    res.writeHead(200, { ...headers, "content-encoding": encoding, "content-length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") {
        fail(
          new UsageError(
            `port ${port} on ${HOST} is taken (is another server running there?); choose another with --port <n>, or --port 0 for any free port`,
          ),
        );
      } else if (e.code === "EACCES") {
        fail(
          new UsageError(`port ${port} needs privileges this process does not have; use a port above 1023, e.g. --port ${DEFAULT_PORT}`),
        );
      } else fail(e);
    });
    server.listen(port, HOST, () => ok());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://${HOST}:${actual}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        // Browsers keep connections open; drop them so close() does not wait for their timeout.
        server.closeAllConnections();
      }),
  };
}

function parsePort(text: string): number {
  const t = text.trim();
  const n = Number(t);
  if (!/^[0-9]+$/.test(t) || n > 65535)
    throw new UsageError(`--port: '${text}' is not a port; give a number from 0 to 65535 (0: any free port)`);
  return n;
}

export function serveCommand(out: Out): Command {
  return new Command("serve")
    .description("serve the web visualizer (the built page in dist/web) on 127.0.0.1 and print its address")
    .option("--port <n>", `TCP port (0: any free port)`, String(DEFAULT_PORT))
    .option("--dir <path>", "serve this directory instead of the built dist/web")
    .action(async (o) => {
      const port = parsePort(o.port);
      const root = o.dir ?? defaultWebRoot();
      const h = await startServer(root, port);
      out.write(`memvirt: serving the visualizer from ${root}\n  ${h.url}\n(Ctrl-C to stop)\n`);
      await new Promise<void>((done) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          h.close().then(done);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
        h.server.on("close", () => done());
      });
    });
}
