// SPDX-License-Identifier: MIT
// Builds the web visualizer (src/web) into dist/web: relative asset paths, so the files
// work from any static server or sub-directory (`memvirt serve`, GitHub Pages, a USB stick
// behind `python3 -m http.server`), and an ES-module worker that runs the simulation.

import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL("./src/web", import.meta.url));

export default defineConfig({
  root,
  base: "./",
  // Vite compiles TSX itself; src/web/tsconfig.json has jsx: react-jsx with jsxImportSource: preact.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  worker: { format: "es" },
  build: {
    outDir: fileURLToPath(new URL("./dist/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 1500,
    sourcemap: true,
  },
  server: { fs: { allow: [fileURLToPath(new URL(".", import.meta.url))] } },
});
