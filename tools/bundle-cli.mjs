#!/usr/bin/env node
// Bundles the built CLI (dist/cli/bin.js and the sweep worker) into dist/bin/, our code and
// the pure-JS dependencies together: resolving and loading some 300 module files was half of
// the CPU a short `memvirt run` costs. Native packages and heavy ones stay external (resvg
// has a native binding, vega loads only for `plot`).
// Whitespace and syntax are minified (8 % less start-up CPU); names are kept for profiles.
// zod's messages in 63 languages besides English (290 KB, a third of the CLI's main chunk,
// parsed at every start) are left out: memvirt never switches zod's locale.
import { rmSync } from "node:fs";
import { build } from "esbuild";

/** zod's locales/index.js, which re-exports every language, resolved to English alone. */
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (a) =>
      a.importer.includes("node_modules/zod/") ? { path: "zod-locales", namespace: "zod-english-only" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-english-only" }, () => ({
      contents: 'export { default as en } from "zod/v4/locales/en.js";',
      resolveDir: process.cwd(),
    }));
  },
};

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
  plugins: [zodEnglishOnly],
});
