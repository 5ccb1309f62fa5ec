/**
 * The web client's money formatting (web/src/money.ts): Intl.NumberFormat's layout for the
 * locale, with the digits taken from the decimal string, never from a float.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { amountInputError, formatMoney, isNegative } from '../../web/src/money.js';

it('formats decimal strings in the locale and currency', () => {
  expect(formatMoney('1234.5', 'USD', 'en-US')).toBe('$1,234.50');
  expect(formatMoney('-12.50', 'USD', 'en-US')).toBe('-$12.50');
  expect(formatMoney('0.05', 'GBP', 'en-GB')).toBe('£0.05');
  expect(formatMoney('1234.50', 'EUR', 'de-DE')).toBe('1.234,50\u00a0€');
  expect(formatMoney('-1234.56', 'EUR', 'fr-FR')).toBe('-1\u202f234,56\u00a0€');
  expect(formatMoney('1200', 'JPY', 'ja-JP')).toBe('￥1,200');
  expect(formatMoney('1234567.00', 'INR', 'en-IN')).toBe('₹12,34,567.00');
});

it('keeps every digit past what a float holds, and never rounds', () => {
  // 2^53 + 1 minor units: a Number would print ...992.00.
  expect(formatMoney('90071992547409.93', 'USD', 'en-US')).toBe('$90,071,992,547,409.93');
  expect(formatMoney('1234567890123456789.01', 'USD', 'en-US')).toBe('$1,234,567,890,123,456,789.01');
  expect(formatMoney('0.105', 'USD', 'en-US')).toBe('$0.105');
  expect(new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(Number('1234567890123456789.01'))).not.toBe(
    '$1,234,567,890,123,456,789.01',
  );
});

it('shows a negative zero as zero, and refuses what is not a decimal', () => {
  expect(formatMoney('-0.00', 'USD', 'en-US')).toBe('$0.00');
  for (const bad of ['', '1e5', '12,50', '1.2.3', 'NaN', '0x10', ' - 1']) expect(() => formatMoney(bad, 'USD', 'en-US'), bad).toThrow(/not a decimal/);
});

it('agrees with Intl formatting a Number wherever a Number is exact (cents below 2^53)', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: -(2n ** 50n), max: 2n ** 50n }),
      fc.constantFrom('en-US', 'de-DE', 'fr-FR', 'en-IN', 'ja-JP', 'ar-EG'),
      fc.constantFrom('USD', 'EUR'),
      (cents, locale, currency) => {
        const abs = cents < 0n ? -cents : cents;
        const text = `${cents < 0n ? '-' : ''}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
        const expected = new Intl.NumberFormat(locale, { style: 'currency', currency }).format(Number(text));
        // (Intl prints -0 as "-$0.00"; we print zero without a sign.)
        if (cents !== 0n) expect(formatMoney(text, currency, locale)).toBe(expected);
      },
    ),
  );
});

it('checks the amount field before sending', () => {
  expect(amountInputError('12.50')).toBeNull();
  expect(amountInputError('12')).toBeNull();
  expect(amountInputError('')).toMatch(/Enter/);
  expect(amountInputError('12.505')).toMatch(/decimals/);
  expect(amountInputError('0.00')).toMatch(/more than zero/);
  expect(amountInputError('-3')).toMatch(/digits/);
  expect(amountInputError('1e3')).toMatch(/digits/);
  expect(isNegative('-0.01')).toBe(true);
  expect(isNegative('-0.00')).toBe(false);
  expect(isNegative('5.00')).toBe(false);
});
