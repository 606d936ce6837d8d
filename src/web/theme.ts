// SPDX-License-Identifier: MIT
// The colour theme: the system's (prefers-color-scheme), or light or dark by choice, kept in
// localStorage and applied as <html data-theme>; style.css holds both palettes.

import { useLayoutEffect, useState } from "preact/hooks";

export type Theme = "system" | "light" | "dark";
const KEY = "memvirt-theme";

export function nextTheme(t: Theme): Theme {
  return t === "system" ? "dark" : t === "dark" ? "light" : "system";
}

function stored(): Theme {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

export function useTheme(): [Theme, (t: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(stored);
  useLayoutEffect(() => {
    const root = document.documentElement;
    if (theme === "system") root.removeAttribute("data-theme");
    else root.setAttribute("data-theme", theme);
    try {
      if (theme === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, theme);
    } catch {
      // Storage may be off (private mode): the choice then lasts for this page only.
    }
  }, [theme]);
  return [theme, setTheme];
}
