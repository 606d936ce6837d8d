// SPDX-License-Identifier: MIT
// `memvirt translate`: one translation on a scratch machine, printed step by step.

import { Command, Option } from "@commander-js/extra-typings";
import { fromCanonical, hex, toCanonical } from "../hw/addr.js";
import {
  DEFAULT_TRANSLATE,
  type PageSizeName,
  type TranslateOptions,
  type TranslateReport,
  coldWalkReads,
  runTranslate,
} from "../sim/translate.js";
import { UsageError } from "./errors.js";
import { type Out, bold, colorKind, dim, fitText, table } from "./format.js";

const PAGE_NAMES: Record<PageSizeName, string> = { "4k": "4 KiB", "2m": "2 MiB", "1g": "1 GiB" };

/** Parses `--gva`: hex (0x...) or decimal, canonical for the paging levels, 8-byte aligned. */
export function parseGva(text: string, levels: 4 | 5): number {
  let v: bigint;
  try {
    if (!/^(0x[0-9a-f_]+|[0-9_]+)$/i.test(text.trim())) throw new Error();
    v = BigInt(text.trim().replaceAll("_", ""));
  } catch {
    throw new UsageError(`--gva: '${text}' is not an address; give hex like 0x7f1234567000 or a decimal number`);
  }
  const a = fromCanonical(v, levels);
  if (a === null) {
    const half = levels === 4 ? "0x00007fffffffffff or from 0xffff800000000000" : "0x00ffffffffffffff or from 0xff00000000000000";
    throw new UsageError(
      `--gva: ${hex(v)} is not canonical for ${levels}-level paging (bits ${levels === 4 ? "63:47" : "63:56"} must all equal bit ${levels === 4 ? 47 : 56}); use an address up to ${half}`,
    );
  }
  if (v % 8n !== 0n) {
    throw new UsageError(
      `--gva: ${hex(v)} is not 8-byte aligned; an 8-byte access there could straddle two pages, which memvirt does not model (use ${hex(v & ~7n)})`,
    );
  }
  return a;
}

export function translateCommand(out: Out): Command {
  return new Command("translate")
    .description("translate one guest-virtual address on a scratch machine and print every memory reference of the walk")
    .addOption(
      new Option("--paging <mode>", "native, EPT (Intel) or NPT (AMD) nested paging")
        .choices(["native", "ept", "npt"] as const)
        .default("ept" as const),
    )
    .addOption(new Option("--levels <n>", "paging levels of guest and host tables").choices(["4", "5"] as const).default("4" as const))
    .addOption(new Option("--guest-page <size>", "guest page size").choices(["4k", "2m", "1g"] as const).default("4k" as const))
    .addOption(
      new Option("--host-page <size>", "EPT/NPT page size backing guest memory")
        .choices(["4k", "2m", "1g"] as const)
        .default("4k" as const),
    )
    .option("--gva <addr>", "guest-virtual address (hex or decimal, canonical, 8-byte aligned)", hex(DEFAULT_TRANSLATE.gva))
    .option("--cold", "TLB and paging-structure caches empty and unused: the architectural worst case (default)")
    .option("--warm", "a second access to the address after a first, caches on: the TLB hit")
    .addOption(
      new Option("--caches <on|off>", "paging-structure caches and nested TLB (default: off when cold, on when warm)").choices([
        "on",
        "off",
      ] as const),
    )
    .addOption(new Option("--access <kind>", "kind of access").choices(["read", "write", "fetch"] as const).default("read" as const))
    .option("--supervisor", "a supervisor-mode access (default: user mode)")
    .option("--no-ept-ad", "EPT without accessed/dirty flags (EPTP bit 6 clear)")
    .option("--json", "print the report as JSON")
    .action((o) => {
      if (o.cold && o.warm) throw new UsageError("--cold and --warm exclude each other; give one");
      const levels = Number(o.levels) as 4 | 5;
      const warm = o.warm === true;
      const opts: TranslateOptions = {
        paging: o.paging,
        levels,
        guestPage: o.guestPage,
        hostPage: o.paging === "native" ? "4k" : o.hostPage,
        gva: parseGva(o.gva, levels),
        accesses: warm ? 2 : 1,
        access: o.access,
        user: o.supervisor !== true,
        caches: o.caches ? o.caches === "on" : warm,
        eptAd: o.eptAd,
      };
      const report = runTranslate(opts);
      out.write(o.json ? `${JSON.stringify(toJson(report), null, 2)}\n` : fitText(out, formatTranslate(out, report)));
    });
}

function toJson(r: TranslateReport) {
  return { memvirt: "translate", gva: hex(toCanonical(r.options.gva, r.options.levels)), ...r };
}

export function formatTranslate(out: Out, r: TranslateReport): string {
  const o = r.options;
  const mode = o.paging === "native" ? "native paging" : `${o.paging.toUpperCase()} nested paging`;
  const lines: string[] = [];
  const dims =
    o.paging === "native" ? `${o.levels}-level tables` : `${o.levels}-level guest tables + ${o.levels}-level ${o.paging.toUpperCase()}`;
  lines.push(
    bold(
      out,
      `memvirt translate: ${mode}, ${dims}, ${PAGE_NAMES[o.guestPage]} guest page${o.paging === "native" ? "" : `, ${PAGE_NAMES[o.hostPage]} host page`}`,
    ),
  );
  const state =
    o.accesses > 1
      ? "warm: the second access, after a first"
      : o.caches
        ? "cold: TLB and caches empty"
        : "cold: TLB empty, paging-structure caches off";
  lines.push(`${o.user ? "user" : "supervisor"} ${o.access} of gva ${hex(toCanonical(o.gva, o.levels), 16)}; ${state}`);
  const rows = r.steps.map((s) => [
    s.step,
    colorKind(out, s.kind, s.kind === "data" ? "data" : s.kind === "guest-table" ? "guest table" : "nested table"),
    s.table,
    s.translating,
    s.gpa ?? "",
    s.hpa,
    s.entry,
  ]);
  lines.push(
    table(out, ["step", "reference", "entry read", "translating", "gpa", "hpa", "entry"], rows, [
      "right",
      "left",
      "left",
      "left",
      "right",
      "right",
      "left",
    ]),
  );
  const ref = r.references;
  if (r.outcome === "ok") {
    const chain = r.gpa ? `gva ${hex(o.gva)} -> gpa ${r.gpa} -> hpa ${r.hpa}` : `gva ${hex(o.gva)} -> hpa ${r.hpa}`;
    lines.push(`outcome: ok, ${chain} (${r.pageSize >= 2 ** 30 ? "1 GiB" : r.pageSize >= 2 ** 21 ? "2 MiB" : "4 KiB"} TLB entry)`);
  } else {
    const f = r.fault!;
    const parts = Object.entries(f).map(([k, v]) => `${k} ${v}`);
    lines.push(`outcome: ${r.outcome} (${parts.join(", ")})`);
  }
  lines.push(bold(out, `references: ${ref.total} = ${ref.guestTable} guest-table + ${ref.nestedTable} nested-table + ${ref.data} data`));
  if (o.paging !== "native" && o.accesses === 1 && !o.caches && o.guestPage === "4k" && o.hostPage === "4k" && r.outcome === "ok") {
    lines.push(
      dim(
        out,
        `(n*m + n + m = ${coldWalkReads(o.levels, o.levels)} table reads for n = m = ${o.levels}, plus the data: "the guest touches memory once, the host may touch it ${ref.total} times")`,
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}
