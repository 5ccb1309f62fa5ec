/**
 * A demo checkout: pay a merchant from an account or card, with the card present (in a shop) or
 * not (online, by phone). The fraud rules see what a real checkout would send; a charge they flag
 * raises a live alert (alerts/AlertToasts.tsx).
 */
import { useMutation, useQuery } from '@apollo/client/react';
import { useState, type FormEvent } from 'react';
import { accountName } from '../labels.js';
import { Field } from '../Field.js';
import { amountInputError, money } from '../money.js';
import { HISTORY, ME, MERCHANTS, PAY } from '../operations.js';
import { useMovementForm } from '../useMovementForm.js';

const FIELDS = ['accountId', 'merchantId', 'amount', 'description', 'cardPresent'] as const;

export function Pay() {
  const me = useQuery(ME, { errorPolicy: 'all' });
  const merchants = useQuery(MERCHANTS, { variables: { first: 100 } });
  const accounts = me.data?.me?.accounts ?? [];
  const [account, setAccount] = useState('');
  const [merchant, setMerchant] = useState('');
  const [amount, setAmount] = useState('');
  const [cardPresent, setCardPresent] = useState(true);
  const [done, setDone] = useState<string | null>(null);
  const form = useMovementForm();
  const [pay, { loading }] = useMutation(PAY, { refetchQueries: [ME, HISTORY] });
  const accountId = account || accounts.find((a) => a.kind === 'CREDIT_CARD' || a.kind === 'DEBIT_CARD')?.id || accounts[0]?.id || '';
  const merchantId = merchant || merchants.data?.merchants[0]?.id || '';
  const currency = accounts.find((a) => a.id === accountId)?.currency ?? 'USD';
  const edit =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v);
      setDone(null);
      form.edited();
    };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const amountError = amountInputError(amount);
    if (amountError) return form.setErrors({ amount: amountError });
    try {
      const res = await pay({
        variables: { input: { accountId, merchantId, amount: { amount: amount.trim(), currency }, cardPresent, idempotencyKey: form.key() } },
      });
      const payload = res.data?.makePurchase;
      if (!payload) return form.failed('No answer from the server.');
      form.answered(payload.userErrors, FIELDS);
      if (payload.purchase) setDone(`Paid ${money(payload.purchase.amount)} at ${payload.purchase.merchant.name}.`);
    } catch (err) {
      form.failed(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <form className="panel" onSubmit={submit} noValidate aria-describedby={form.formError ? 'pay-form-error' : undefined}>
      <Field id="merchantId" label="Merchant" error={form.errors.merchantId}>
        <select value={merchantId} onChange={(e) => edit(setMerchant)(e.target.value)}>
          {(merchants.data?.merchants ?? []).map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} ({m.country})
            </option>
          ))}
        </select>
      </Field>
      <Field id="accountId" label="Pay with" error={form.errors.accountId}>
        <select value={accountId} onChange={(e) => edit(setAccount)(e.target.value)}>
          {accounts.map((a) => (
            <option key={a.id} value={a.id}>
              {accountName(a)}
            </option>
          ))}
        </select>
      </Field>
      <Field id="amount" label={`Amount (${currency})`} error={form.errors.amount}>
        <input type="text" inputMode="decimal" autoComplete="off" value={amount} onChange={(e) => edit(setAmount)(e.target.value)} />
      </Field>
      <div className="field checkbox">
        <input id="cardPresent" type="checkbox" checked={cardPresent} onChange={(e) => edit(setCardPresent)(e.target.checked)} />
        <label htmlFor="cardPresent">Card present (in the shop; untick for online or phone orders)</label>
      </div>
      {form.formError ? (
        <p id="pay-form-error" className="field-error" role="alert">
          {form.formError}
        </p>
      ) : null}
      <button type="submit" disabled={loading || !accountId || !merchantId}>
        {loading ? 'Paying…' : 'Pay'}
      </button>
      <p role="status" className="success">
        {done}
      </p>
    </form>
  );
}
