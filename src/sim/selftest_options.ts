// SPDX-License-Identifier: MIT
// The command lines of KVM's selftests: getopt(3) over an option string, parse_size(),
// atoi_positive() (lib/test_util.c), the backing source names (vm_mem_backing_src_alias())
// and the guest modes (vm_guest_mode_string(), lib/guest_modes.c). A refused value is a
// SelftestAssert carrying the test's own TEST_ASSERT message.

import type { Backing } from "../qemu/vm.js";

/** A TEST_ASSERT / TEST_FAIL of the real test, with its message; `memvirt`: a refusal of memvirt's own (what it does not model). */
export class SelftestAssert extends Error {
  constructor(
    message: string,
    readonly memvirt = false,
  ) {
    super(message);
  }
}

/** A TEST_ASSERT of the real test that failed during the run (the model did what the test says a kernel must not). */
export class SelftestFailure extends Error {}

/** getopt(3) with an option string like "ab:c": options in order, with their argument. */
export function getopt(argv: readonly string[], optstring: string): { opt: string; arg: string }[] {
  const out: { opt: string; arg: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (!a.startsWith("-") || a.length < 2) throw new SelftestAssert(`unexpected argument '${a}': the test takes options only (see -h)`);
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      const at = optstring.indexOf(c);
      if (at < 0 || c === ":") throw new SelftestAssert(`invalid option -- '${c}'`);
      if (optstring[at + 1] !== ":") {
        out.push({ opt: c, arg: "" });
        continue;
      }
      let arg = a.slice(j + 1);
      if (arg === "") {
        if (i + 1 >= argv.length) throw new SelftestAssert(`option requires an argument -- '${c}'`);
        arg = argv[++i]!;
      }
      out.push({ opt: c, arg });
      break;
    }
  }
  return out;
}

/** parse_size(): a number (strtoull base 0) with an optional b, k, m, g or t (any case). */
export function parseSize(size: string): number {
  if (!/^[0-9]/.test(size)) throw new SelftestAssert(`Need at least one digit in '${size}'`);
  const m = /^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)(.*)$/i.exec(size)!;
  const base = Number(m[1]!.startsWith("0") && !/^0x/i.test(m[1]!) && m[1]!.length > 1 ? Number.parseInt(m[1]!, 8) : m[1]);
  const shift = { t: 40, g: 30, m: 20, k: 10, b: 0, "": 0 }[m[2]!.charAt(0).toLowerCase()];
  if (shift === undefined) throw new SelftestAssert(`Unknown size letter ${m[2]!.charAt(0)}`);
  const v = base * 2 ** shift;
  if (!Number.isSafeInteger(v)) throw new SelftestAssert("Overflow scaling size!");
  return v;
}

/** atoi_paranoid(): strtol base 0, the whole string. */
function atoiParanoid(s: string): number {
  const m = /^\s*([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)(.*)$/i.exec(s);
  if (m === null) throw new SelftestAssert(`strtol("${s}") didn't find a valid integer.`);
  if (m[3] !== "") throw new SelftestAssert(`strtol("${s}") failed to parse trailing characters "${m[3]}".`);
  const digits = m[2]!;
  const v =
    (m[1] === "-" ? -1 : 1) *
    (digits.length > 1 && digits[0] === "0" && !/^0x/i.test(digits) ? Number.parseInt(digits, 8) : Number(digits));
  if (v < -(2 ** 31) || v > 2 ** 31 - 1) throw new SelftestAssert(`${v} not in range of [-2147483648, 2147483647]`);
  return v;
}

/** atoi_positive(name, s). */
export function atoiPositive(name: string, s: string): number {
  const v = atoiParanoid(s);
  if (v <= 0) throw new SelftestAssert(`${name} must be greater than 0, got '${s}'`);
  return v;
}

/** atoi_non_negative(name, s). */
export function atoiNonNegative(name: string, s: string): number {
  const v = atoiParanoid(s);
  if (v < 0) throw new SelftestAssert(`${name} must be non-negative, got '${s}'`);
  return v;
}

/** C atoi(): leading digits, 0 if none. */
export function atoi(s: string): number {
  const m = /^\s*([+-]?[0-9]+)/.exec(s);
  return m === null ? 0 : Number.parseInt(m[1]!, 10);
}

/** vm_mem_backing_src_alias() names, in enum order, and what memvirt backs each with (null: not modelled). */
export const BACKING_SRC: readonly { name: string; backing: Backing | null; why?: string }[] = [
  { name: "anonymous", backing: "4k" },
  { name: "anonymous_thp", backing: "thp" },
  // get_def_hugetlb_pagesz(): the default hugetlb size, 2 MiB on x86.
  { name: "anonymous_hugetlb", backing: "hugetlb-2m" },
  ...["16kb", "64kb", "512kb", "1mb"].map((s) => ({ name: `anonymous_hugetlb_${s}`, backing: null, why: "not a hugetlb size on x86" })),
  { name: "anonymous_hugetlb_2mb", backing: "hugetlb-2m" },
  ...["8mb", "16mb", "32mb", "256mb", "512mb"].map((s) => ({
    name: `anonymous_hugetlb_${s}`,
    backing: null,
    why: "not a hugetlb size on x86",
  })),
  { name: "anonymous_hugetlb_1gb", backing: "hugetlb-1g" },
  ...["2gb", "16gb"].map((s) => ({ name: `anonymous_hugetlb_${s}`, backing: null, why: "not a hugetlb size on x86" })),
  { name: "shmem", backing: null, why: "memvirt does not model shmem-backed guest memory (memfd / MAP_SHARED anonymous)" },
  { name: "shared_hugetlb", backing: null, why: "memvirt does not model shared (MAP_SHARED) hugetlbfs guest memory" },
];

/** parse_backing_src_type(); a source memvirt cannot back is refused saying why. */
export function parseBackingSrc(name: string): { name: string; backing: Backing } {
  const s = BACKING_SRC.find((b) => b.name === name);
  if (s === undefined)
    throw new SelftestAssert(
      `Available backing src types:\n${BACKING_SRC.map((b) => `    ${b.name}`).join("\n")}\nUnknown backing src type: ${name}`,
    );
  if (s.backing === null)
    throw new SelftestAssert(
      `backing src type ${name}: ${s.why}; memvirt backs ${BACKING_SRC.filter((b) => b.backing !== null)
        .map((b) => b.name)
        .join(", ")}`,
      true,
    );
  return { name, backing: s.backing };
}

/** vm_guest_mode_string() by mode ID (enum vm_guest_mode). */
export const GUEST_MODES: readonly string[] = [
  "PA-bits:52,  VA-bits:48,  4K pages",
  "PA-bits:52,  VA-bits:48, 16K pages",
  "PA-bits:52,  VA-bits:48, 64K pages",
  "PA-bits:48,  VA-bits:48,  4K pages",
  "PA-bits:48,  VA-bits:48, 16K pages",
  "PA-bits:48,  VA-bits:48, 64K pages",
  "PA-bits:40,  VA-bits:48,  4K pages",
  "PA-bits:40,  VA-bits:48, 16K pages",
  "PA-bits:40,  VA-bits:48, 64K pages",
  "PA-bits:ANY, VA-bits:48,  4K pages",
  "PA-bits:ANY, VA-bits:57,  4K pages",
  "PA-bits:47,  VA-bits:64,  4K pages",
  "PA-bits:44,  VA-bits:64,  4K pages",
  "PA-bits:36,  VA-bits:48,  4K pages",
  "PA-bits:36,  VA-bits:48, 16K pages",
  "PA-bits:36,  VA-bits:48, 64K pages",
  "PA-bits:36,  VA-bits:47, 16K pages",
];
/** VM_MODE_DEFAULT on x86-64: VM_MODE_PXXV48_4K. */
export const MODE_DEFAULT = 9;
/** The x86-64 modes and their guest paging levels. */
const MODE_LEVELS = new Map<number, 4 | 5>([
  [9, 4],
  [10, 5],
]);

/** guest_modes_cmdline() for each -m; then for_each_guest_mode()'s check. Returns [mode, levels] pairs. */
export function guestModes(args: readonly string[]): { mode: number; levels: 4 | 5 }[] {
  const ids = args.length === 0 ? [MODE_DEFAULT] : args.map((a) => atoi(a));
  for (const id of ids) if (id < 0 || id >= GUEST_MODES.length) throw new SelftestAssert(`Guest mode ID ${id} too big`);
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  return sorted.map((mode) => {
    const levels = MODE_LEVELS.get(mode);
    if (levels === undefined) throw new SelftestAssert(`Guest mode ID ${mode} (${GUEST_MODES[mode]}) not supported.`);
    return { mode, levels };
  });
}

/** guest_modes_help(). */
export function guestModesHelp(): string {
  const rows = GUEST_MODES.map((s, i) => `         ${i}:    ${s}${MODE_LEVELS.has(i) ? " (supported)" : ""}`);
  return ` -m: specify the guest mode ID to test\n     (default: test all supported modes)\n     This option may be used multiple times.\n     Guest mode IDs:\n${rows.join("\n")}\n`;
}

/** backing_src_help(flag). */
export function backingSrcHelp(flag: string): string {
  return ` ${flag}: specify the type of memory that should be used to\n     back the guest data region. (default: anonymous)\n     Available backing src types:\n${BACKING_SRC.map((b) => `         ${b.name}`).join("\n")}\n`;
}

/** The first lines every test prints: kvm_selftest_init()'s seed, memstress_create_vm()'s mode and region. */
export function memstressPreamble(mode: number, gpa: number, size: number): string[] {
  return [
    // glibc random()'s first value, unseeded: what kvm_selftest_init() prints.
    "Random seed: 0x6b8b4567",
    `Testing guest mode: ${GUEST_MODES[mode]}`,
    `guest physical test memory: [0x${gpa.toString(16)}, 0x${(gpa + size).toString(16)})`,
  ];
}

/** memstress_create_vm()'s alignment checks of -b. */
export function checkVcpuBytes(bytes: number): void {
  if (bytes % 4096 !== 0) throw new SelftestAssert("Guest memory size is not host page size aligned.");
}

/** KVM_CAP_MAX_VCPUS as memvirt reports it. */
export function checkVcpus(n: number, max: number): void {
  if (n > max) throw new SelftestAssert(`Invalid number of vcpus, must be between 1 and ${max}`);
}
