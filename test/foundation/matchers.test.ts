/**
 * The shared matchers (test/helpers/matchers.ts) themselves: the leak scan finds a secret as a whole
 * value and never inside a random request id, UUID, hash or timestamp (a response once failed
 * because alice's card digits 4821 occurred inside its random request id).
 */
import { describe, expect, it } from 'vitest';
import { expectForbiddenDataUse, expectGraphQLError, expectUserErrors, findLeaks, scrubVolatile } from '../helpers/matchers.js';

const refusal = (requestId: string) =>
  JSON.stringify({
    errors: [
      {
        message: `The data-use fence refused Account.mask (request id ${requestId}).`,
        extensions: { code: 'FORBIDDEN_DATA_USE', coordinates: ['Account.mask'], requestId },
      },
    ],
    data: null,
  });

describe('findLeaks', () => {
  it('ignores a secret that occurs by chance inside a request id, a UUID, a hash or a timestamp', () => {
    const body = refusal('a5154ed1-0c45-4821-9a2b-3f6c1d2e4821');
    expect(findLeaks(body, ['4821'])).toEqual([]);
    expect(
      findLeaks({ text: body, headers: new Headers({ 'x-request-id': 'a5154ed1-0c45-4821-9a2b-3f6c1d2e4821', 'content-length': '4821' }) }, ['4821']),
    ).toEqual([]);
    expect(findLeaks('{"operationHash":"9f4821aa0c45b7e1d2c3b4a5968778695a4b3c2d1e0f"}', ['4821'])).toEqual([]);
    expect(findLeaks('{"time":1764580004821,"at":"2026-12-01T08:48:21.123Z","durationMs":48.21}', ['4821', '48.21'])).toEqual([]);
    // ...and inside longer numbers, words and ids.
    expect(findLeaks('{"amount":"112.50","id":"je_seed_4821","port":48213}', ['12.50', '4821'])).toEqual([]);
  });

  it('finds a secret as a whole value, in a message, in a header, or JSON-escaped', () => {
    expect(findLeaks(JSON.stringify({ data: { me: { accounts: [{ mask: '4821' }] } } }), ['4821']).map((l) => l.secret)).toEqual(['4821']);
    expect(findLeaks(refusal('a5154ed1-0c45-4821-9a2b-3f6c1d2e4821').replace('Account.mask', 'card 4821'), ['4821'])).toHaveLength(1);
    expect(findLeaks(new Headers({ 'x-card': '4821' }), ['4821'])).toHaveLength(1);
    expect(findLeaks(JSON.stringify({ d: 'Dinner "split"' }), ['Dinner "split"'])).toHaveLength(1);
  });

  it('never scrubs away a secret that looks random', () => {
    const token = 'test-jwt-0123456789abcdef0123456789abcdef';
    expect(scrubVolatile(`{"msg":"verify ${token}"}`, [token])).toContain(token);
    expect(findLeaks(`{"msg":"verify ${token}"}`, [token])).toHaveLength(1);
    const uuid = 'a5154ed1-0c45-4821-9a2b-3f6c1d2e4821';
    expect(findLeaks(`{"id":"${uuid}"}`, [uuid])).toHaveLength(1);
  });
});

describe('result matchers', () => {
  it('expectGraphQLError and expectForbiddenDataUse accept a response or a bare error list', () => {
    const errors = [
      { message: 'Refused: Account.mask, User.accounts', extensions: { code: 'FORBIDDEN_DATA_USE', coordinates: ['Account.mask', 'User.accounts'] } },
    ];
    expect(expectGraphQLError({ status: 403, data: null, errors }, 'FORBIDDEN_DATA_USE', { status: 403, noData: true }).message).toMatch(/Refused/);
    expect(expectForbiddenDataUse(errors, ['User.accounts'])).toBe(errors[0]);
    expect(() => expectForbiddenDataUse(errors, ['Account.balance'])).toThrow();
    expect(() => expectGraphQLError({ data: { me: null } }, 'NOT_FOUND')).toThrow();
  });

  it('expectUserErrors wants exactly the codes, messages, and no result when refused', () => {
    const refused = { transfer: null, userErrors: [{ code: 'INSUFFICIENT_FUNDS', field: ['input', 'amount'], message: 'Not enough money.' }] };
    expectUserErrors(refused, ['INSUFFICIENT_FUNDS'], { field: ['input', 'amount'] });
    expect(() => expectUserErrors({ ...refused, transfer: { id: 'trf_1' } }, ['INSUFFICIENT_FUNDS'])).toThrow();
    expect(() => expectUserErrors(refused, [])).toThrow();
    expectUserErrors({ transfer: { id: 'trf_1' }, userErrors: [] }, []);
  });
});
