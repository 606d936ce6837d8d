// SPDX-License-Identifier: MIT
// Entry point of the page: styles and the app.

import "uplot/dist/uPlot.min.css";
import "./style.css";
import { render } from "preact";
import { App } from "./app.js";

const root = document.getElementById("app")!;
// index.html's static shell showed something before this script ran; the app replaces it.
root.textContent = "";
render(<App />, root);
