// SPDX-License-Identifier: MIT
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { formatSize, GiB, KiB, MiB, parseCount, parseSize, TiB, tryParseAddress, tryParseCount, tryParseSize } from "./size.js";

const err = (r: { ok: boolean; message?: string }) => (r.ok ? "ok" : r.message);

describe("parseSize", () => {
  test.each([
    ["2GiB", 2 * GiB],
    ["512MiB", 512 * MiB],
    ["4KiB", 4 * KiB],
    ["1TiB", TiB],
    ["123B", 123],
    ["0", 0],
    ["4096", 4096],
    ["1_000_000", 1_000_000],
    ["1_024KiB", MiB],
    ["4 KiB", 4 * KiB],
    [" 64mib ", 64 * MiB],
    ["0x200000", 2 * MiB],
    ["0x20_0000", 2 * MiB],
    [4096, 4096],
    [0, 0],
  ] as const)("%s -> %d bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test("refuses what is not a size, and says what a size looks like", () => {
    expect(err(tryParseSize("lots"))).toBe(
      '"lots" is not a size; a size like 512MiB: a whole number with B, KiB, MiB, GiB or TiB, or plain bytes',
    );
    expect(err(tryParseSize(true))).toMatch(/^true is not a size; a size like 512MiB/);
    expect(err(tryParseSize(null))).toMatch(/^null is not a size; /);
    expect(err(tryParseSize("1__0"))).toMatch(/is not a size/);
    expect(err(tryParseSize("_10"))).toMatch(/is not a size/);
  });

  test("refuses negative sizes", () => {
    expect(err(tryParseSize("-1GiB"))).toMatch(/^"-1GiB" is negative; a size like 512MiB/);
    expect(err(tryParseSize(-4096))).toMatch(/^-4096 is negative; a size like 512MiB/);
  });

  test("refuses decimal units and suggests the binary one", () => {
    expect(err(tryParseSize("512MB"))).toBe(
      'unknown unit "MB" in "512MB"; did you mean 512MiB? (sizes use binary units B, KiB, MiB, GiB, TiB)',
    );
    expect(err(tryParseSize("2G"))).toMatch(/did you mean 2GiB\?/);
    expect(err(tryParseSize("5 parsecs"))).toMatch(/^unknown unit "parsecs" in "5 parsecs"; a size like 512MiB/);
  });

  test("refuses fractions, suggesting the exact spelling when there is one", () => {
    expect(err(tryParseSize("1.5GiB"))).toMatch(/^"1.5GiB" is not a whole number of units; write 1536MiB; /);
    expect(err(tryParseSize("1.3KiB"))).toMatch(/^"1.3KiB" is not a whole number of units; a size like/);
    expect(err(tryParseSize(1.5))).toMatch(/^1.5 is not a whole number; /);
  });

  test("refuses sizes a double cannot hold exactly", () => {
    expect(err(tryParseSize("9007199254740993"))).toMatch(/above 2\^53/);
    expect(err(tryParseSize("10000TiB"))).toMatch(/above 2\^53/);
    expect(err(tryParseSize(2 ** 60))).toMatch(/above 2\^53/);
  });

  test("parseSize throws a RangeError with the same message", () => {
    expect(() => parseSize("12 apples")).toThrow(RangeError);
    expect(() => parseSize("12 apples")).toThrow(/unknown unit "apples"/);
  });
});

describe("counts and addresses", () => {
  test("counts take `_` separators and refuse units, signs and fractions", () => {
    expect(parseCount("1_000_000")).toBe(1_000_000);
    expect(parseCount(42)).toBe(42);
    expect(parseCount(" 7 ")).toBe(7);
    expect(err(tryParseCount("1MiB"))).toBe('"1MiB" is not a count; a count like 1_000_000: a whole number, `_` separators allowed');
    expect(err(tryParseCount("-3"))).toMatch(/^"-3" is negative; a count like/);
    expect(err(tryParseCount(2.5))).toMatch(/^2.5 is not a whole number; a count like/);
  });

  test("addresses read hex, decimal and sizes alike", () => {
    expect(err(tryParseAddress("0x1000"))).toBe("ok");
    expect(tryParseAddress("0x1000")).toEqual({ ok: true, value: 4096 });
    expect(tryParseAddress("2MiB")).toEqual({ ok: true, value: 2 * MiB });
    expect(err(tryParseAddress("0xZZ"))).toBe(
      '"0xZZ" is not an address; an address like 0x200000 or 2MiB: a whole number of bytes, hex with 0x',
    );
  });
});

describe("formatSize", () => {
  test.each([
    [0, "0B"],
    [1, "1B"],
    [1536, "1536B"],
    [4096, "4KiB"],
    [3 * MiB, "3MiB"],
    [1024 * MiB, "1GiB"],
    [1536 * MiB, "1536MiB"],
    [2 * TiB, "2TiB"],
    [2 ** 46, "64TiB"],
  ])("%d -> %s", (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  test("refuses what is not a whole number of bytes", () => {
    expect(() => formatSize(-1)).toThrow(RangeError);
    expect(() => formatSize(0.5)).toThrow(RangeError);
  });

  test("round-trips: parse(format(n)) = n for every size below 2^53", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => parseSize(formatSize(n)) === n),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4095 }),
        fc.constantFrom(1, KiB, MiB, GiB, TiB),
        (k, unit) => parseSize(formatSize(k * unit)) === k * unit,
      ),
      { numRuns: 500 },
    );
  });

  test("formats in the shortest exact unit: the number is not a multiple of 1024 unless the unit is TiB", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 22 }), fc.constantFrom(1, KiB, MiB, GiB), (k, unit) => {
        const text = formatSize(k * unit);
        const m = /^(\d+)(\w+)$/.exec(text)!;
        return m[2] === "TiB" || Number(m[1]) % 1024 !== 0;
      }),
    );
  });
});

describe("fuzz: every input ends in a value or a message (issue 11)", () => {
  const parsers = { tryParseSize, tryParseCount, tryParseAddress };
  const inputs = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: fc.constantFrom(..."0123456789_xXabcdefKMGTiB .-e+"), maxLength: 40 }),
    fc.anything(),
    fc.double(),
    fc.bigInt().map((b) => b.toString()),
    fc
      .tuple(fc.bigInt({ min: 0n, max: 10n ** 40n }), fc.constantFrom("", "B", "KiB", "MiB", "GiB", "TiB", "kb", "mb"))
      .map(([n, u]) => `${n}${u}`),
  );
  for (const [name, parse] of Object.entries(parsers)) {
    test(`${name}: a safe whole number >= 0, or a message saying what is wrong; never a throw`, () => {
      fc.assert(
        fc.property(inputs, (input) => {
          const r = parse(input);
          if (r.ok) return Number.isSafeInteger(r.value) && r.value >= 0;
          return typeof r.message === "string" && r.message.length > 10;
        }),
        { numRuns: 2000 },
      );
    });
  }

  test("huge numbers are refused as not exact, never rounded", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 2n ** 53n, max: 10n ** 30n }), (n) => {
        const r = tryParseSize(n.toString());
        return !r.ok && r.message.includes("above 2^53");
      }),
    );
    expect(err(tryParseSize("9007199254740992"))).toBe(
      '"9007199254740992" is above 2^53 bytes and not exact; a size like 512MiB: a whole number with B, KiB, MiB, GiB or TiB, or plain bytes',
    );
    expect(err(tryParseCount(2 ** 60))).toBe(
      "1152921504606847000 is above 2^53 and not exact; a count like 1_000_000: a whole number, `_` separators allowed",
    );
  });
});
