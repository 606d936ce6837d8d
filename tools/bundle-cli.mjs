#!/usr/bin/env node
// Bundles the built CLI (dist/cli/bin.js and the sweep worker) into dist/bin/, our code and
// the pure-JS dependencies together: resolving and loading some 300 module files was half of
// the CPU a short `memvirt run` costs. Native packages and heavy ones stay external (resvg
// has a native binding, vega loads only for `plot`).
// Whitespace and syntax are minified (8 % less start-up CPU); names are kept for profiles.
import { rmSync } from "node:fs";
import { build } from "esbuild";

const out = "dist/bin";
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { memvirt: "dist/cli/bin.js", sweep_worker: "dist/cli/sweep_worker.js" },
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["@resvg/resvg-js", "vega"],
  // CommonJS packages inside an ES module bundle still call require() for Node's builtins.
  banner: { js: 'import { createRequire as __memvirtRequire } from "node:module";\nconst require = __memvirtRequire(import.meta.url);' },
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
});
