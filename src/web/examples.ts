// SPDX-License-Identifier: MIT
// The documented example scenarios of examples/, bundled into the page (Vite inlines them).

export const EXAMPLES: Record<string, string> = Object.fromEntries(
  Object.entries(
    import.meta.glob("../../examples/*.yaml", { query: "?raw", import: "default", eager: true }) as Record<string, string>,
  ).map(([path, text]) => [`examples/${path.slice(path.lastIndexOf("/") + 1)}`, text]),
);
