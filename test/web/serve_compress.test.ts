// SPDX-License-Identifier: MIT
// `memvirt serve` compresses text assets by Accept-Encoding (brotli first, then gzip, none on
// request) and sends caching headers: immutable for Vite's hashed assets, no-cache for index.html.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { cacheControl, pickEncoding, type ServeHandle, startServer } from "../../src/cli/serve_cmd.js";

let dir: string;
let h: ServeHandle;
const JS = `export const table = [${Array.from({ length: 2000 }, (_, i) => i % 97).join(", ")}];\n`;
const HTML = `<!doctype html><title>t</title>${"<p>memvirt</p>".repeat(200)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "memvirt-serve-z-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), HTML);
  writeFileSync(join(dir, "assets", "index-7dxmnPUE.js"), JS);
  writeFileSync(join(dir, "assets", "pic-AbCdEf12.png"), Buffer.alloc(4096, 7));
  h = await startServer(dir, 0);
});

afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw GET (Node's fetch would decompress and hide the encoding). */
function get(path: string, acceptEncoding?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((ok, fail) => {
    const req = request(
      `${h.url}${path.replace(/^\//, "")}`,
      { headers: acceptEncoding ? { "accept-encoding": acceptEncoding } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", fail);
    req.end();
  });
}

describe("memvirt serve: compression and caching", () => {
  test("brotli when accepted, gzip otherwise, identity when neither; the body decodes to the file", async () => {
    const br = await get("/assets/index-7dxmnPUE.js", "gzip, deflate, br");
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers.vary).toBe("accept-encoding");
    expect(Number(br.headers["content-length"])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(JS.length / 4);
    expect(brotliDecompressSync(br.body).toString()).toBe(JS);

    const gz = await get("/assets/index-7dxmnPUE.js", "gzip");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body).toString()).toBe(JS);

    const none = await get("/assets/index-7dxmnPUE.js", "br;q=0, gzip;q=0");
    expect(none.headers["content-encoding"]).toBeUndefined();
    expect(none.body.toString()).toBe(JS);
    const plain = await get("/assets/index-7dxmnPUE.js");
    expect(plain.body.toString()).toBe(JS);
    // Images are not compressed again.
    expect((await get("/assets/pic-AbCdEf12.png", "br")).headers["content-encoding"]).toBeUndefined();
  });

  test("hashed assets are immutable for a year; index.html is revalidated", async () => {
    expect((await get("/assets/index-7dxmnPUE.js", "br")).headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const index = await get("/", "br");
    expect(index.headers["cache-control"]).toBe("no-cache");
    expect(brotliDecompressSync(index.body).toString()).toBe(HTML);
    expect(cacheControl("/assets/app.js")).toBe("no-cache");
    expect(cacheControl("/index.html")).toBe("no-cache");
  });

  test("Accept-Encoding parsing", () => {
    expect(pickEncoding("gzip, deflate, br")).toBe("br");
    expect(pickEncoding("gzip;q=0.5, br;q=0")).toBe("gzip");
    expect(pickEncoding("*")).toBe("gzip");
    expect(pickEncoding("identity")).toBeNull();
    expect(pickEncoding(undefined)).toBeNull();
  });
});
