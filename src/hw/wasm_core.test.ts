// SPDX-License-Identifier: MIT
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { WASM, WASM_CORE_BYTES, WasmCore } from "./wasm_core.js";
import { CORE_RESERVED_BYTES } from "./wasm_memory.js";

const root = new URL("../..", import.meta.url).pathname;

describe("the wasm core", () => {
  test("src/hw/wasm_core_bin.ts is what src/hw/asm/ compiles to (nobody edits one without the other)", () => {
    const r = spawnSync(process.execPath, ["tools/build-wasm.mjs", "--check"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("it instantiates on an imported memory, keeps its data below the reserved 64 KiB and exports its layout", () => {
    expect(WASM_CORE_BYTES.subarray(0, 4)).toEqual(new Uint8Array([0, 0x61, 0x73, 0x6d]));
    const core = new WasmCore(new WASM.Memory({ initial: 2, maximum: 16 }));
    expect(core.fn.heapBase()).toBeLessThanOrEqual(CORE_RESERVED_BYTES);
    expect(core.constant("MMU_BYTES")).toBeGreaterThan(0);
    expect(() => core.constant("S_nothing")).toThrow(/exports no constant S_nothing/);
  });
});
