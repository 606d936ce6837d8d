// SPDX-License-Identifier: MIT
// The story's narration lives in sim/ (the command line's `explain` tells it too).
export * from "../sim/narration.js";
