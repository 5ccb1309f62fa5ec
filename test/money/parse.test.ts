/** Property-based tests (fast-check) of money parsing and formatting: exact, never a float. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CURRENCIES, formatMinor, MAX_MAJOR_UNITS, money, parseMoney, toBigInt } from '../../lib/money.js';

const currency = fc.constantFrom(...Object.keys(CURRENCIES));
const cap = (c: string) => MAX_MAJOR_UNITS * 10n ** BigInt(CURRENCIES[c]!);
/** A currency and a valid positive amount in its minor units, up to the cap. */
const validAmount = currency.chain((c) => fc.record({ currency: fc.constant(c), minor: fc.bigInt(1n, cap(c)) }));

describe('parseMoney / formatMinor', () => {
  it('round trip: format then parse gives back the same minor units', () => {
    fc.assert(
      fc.property(validAmount, ({ currency: c, minor }) => {
        const parsed = parseMoney({ amount: formatMinor(minor, c), currency: c });
        expect(parsed).toEqual({ ok: true, minor, currency: c });
      }),
      { numRuns: 2000 },
    );
  });

  it('round trip: any accepted decimal string formats back to itself, padded to the currency digits', () => {
    const decimal = currency.chain((c) =>
      fc.record({
        currency: fc.constant(c),
        whole: fc.bigInt(0n, MAX_MAJOR_UNITS).map(String),
        frac: fc.stringMatching(new RegExp(`^[0-9]{0,${CURRENCIES[c]!}}$`)),
      }),
    );
    fc.assert(
      fc.property(decimal, ({ currency: c, whole, frac }) => {
        const text = frac.length ? `${whole}.${frac}` : whole;
        const parsed = parseMoney({ amount: text, currency: c });
        const exp = CURRENCIES[c]!;
        const expectedMinor = BigInt(whole) * 10n ** BigInt(exp) + (frac ? BigInt(frac.padEnd(exp, '0')) : 0n);
        if (expectedMinor === 0n || expectedMinor > cap(c)) {
          expect(parsed.ok).toBe(false);
          return;
        }
        expect(parsed).toEqual({ ok: true, minor: expectedMinor, currency: c });
        const padded = exp === 0 ? whole : `${whole}.${frac.padEnd(exp, '0')}`;
        expect(formatMinor(expectedMinor, c)).toBe(padded);
        expect(money(expectedMinor, c)).toEqual({ amount: padded, currency: c });
      }),
      { numRuns: 500 },
    );
  });

  it('formatting is sign-symmetric and toBigInt reads back database integers exactly', () => {
    fc.assert(
      fc.property(currency, fc.bigInt(1n, 10n ** 15n), (c, minor) => {
        expect(formatMinor(-minor, c)).toBe(`-${formatMinor(minor, c)}`);
        expect(toBigInt(minor.toString())).toBe(minor);
        if (minor <= BigInt(Number.MAX_SAFE_INTEGER)) expect(toBigInt(Number(minor))).toBe(minor);
      }),
    );
    expect(formatMinor(0n, 'USD')).toBe('0.00');
    expect(formatMinor(5n, 'USD')).toBe('0.05');
    expect(formatMinor(-5n, 'USD')).toBe('-0.05');
    expect(formatMinor(1234n, 'JPY')).toBe('1234');
    expect(() => toBigInt(2 ** 60)).toThrow(/unsafe/);
    expect(() => toBigInt(1.5)).toThrow();
  });

  it('more decimals than the currency has are refused, even trailing zeros', () => {
    fc.assert(
      fc.property(validAmount, fc.stringMatching(/^[0-9]{1,4}$/), ({ currency: c, minor }, extra) => {
        const text = formatMinor(minor, c);
        const tooPrecise = CURRENCIES[c] === 0 ? `${text}.${extra}` : `${text}${extra}`;
        const parsed = parseMoney({ amount: tooPrecise, currency: c });
        expect(parsed.ok).toBe(false);
        if (!parsed.ok) expect(parsed.error.code).toBe('INVALID_AMOUNT');
      }),
    );
  });

  it('anything with a sign, exponent, space, comma, or other junk is INVALID_AMOUNT', () => {
    const junk = fc.constantFrom('-', '+', 'e', 'E', ' ', ',', '_', 'x', '0x', '.', '..', 'Infinity', 'NaN', '\n', '٣');
    fc.assert(
      fc.property(validAmount, junk, fc.boolean(), ({ currency: c, minor }, j, prefix) => {
        const text = formatMinor(minor, c);
        const amount = prefix ? `${j}${text}` : `${text}${j}`;
        const parsed = parseMoney({ amount, currency: c });
        expect(parsed.ok).toBe(false);
        if (!parsed.ok) expect(parsed.error.code).toBe('INVALID_AMOUNT');
      }),
    );
    for (const amount of ['0', '0.00', '0.0', '00.10', '01', '1e3', '1E3', '-1.00', '', '.50', '1.', ' 1.00', '1,000.00', '１.00']) {
      expect(parseMoney({ amount, currency: 'USD' }), amount).toMatchObject({ ok: false, error: { code: 'INVALID_AMOUNT' } });
    }
    for (const amount of [12.5, 1n, null, undefined, {}, ['1.00']]) {
      expect(parseMoney({ amount, currency: 'USD' })).toMatchObject({ ok: false, error: { code: 'INVALID_AMOUNT' } });
    }
  });

  it('the sanity cap is inclusive, one minor unit above is refused', () => {
    for (const c of Object.keys(CURRENCIES)) {
      expect(parseMoney({ amount: formatMinor(cap(c), c), currency: c })).toMatchObject({ ok: true, minor: cap(c) });
      expect(parseMoney({ amount: formatMinor(cap(c) + 1n, c), currency: c })).toMatchObject({ ok: false, error: { code: 'INVALID_AMOUNT' } });
    }
    expect(parseMoney({ amount: '9'.repeat(40), currency: 'USD' })).toMatchObject({ ok: false, error: { code: 'INVALID_AMOUNT' } });
  });

  it('currencies outside the list are UNSUPPORTED_CURRENCY', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 5 }).filter((s) => !(s in CURRENCIES)),
        (c) => {
          expect(parseMoney({ amount: '1', currency: c })).toMatchObject({ ok: false, error: { code: 'UNSUPPORTED_CURRENCY' } });
        },
      ),
    );
    for (const c of ['usd', 'US', 'USDD', 'XXX', 'BTC'])
      expect(parseMoney({ amount: '1.00', currency: c })).toMatchObject({ ok: false, error: { code: 'UNSUPPORTED_CURRENCY' } });
  });
});
