/**
 * Send money to a handle. The new transfer shows at once in the sender's balances and history
 * (refetched after the answer); the recipient's open History picks it up on its next poll.
 */
import { useMutation, useQuery } from '@apollo/client/react';
import { useState, type FormEvent } from 'react';
import { accountName } from '../labels.js';
import { Field } from '../Field.js';
import { money, amountInputError } from '../money.js';
import { HISTORY, ME, SEND } from '../operations.js';
import { useMovementForm } from '../useMovementForm.js';

const FIELDS = ['fromAccountId', 'toHandle', 'amount', 'note'] as const;

export function Send() {
  const me = useQuery(ME, { errorPolicy: 'all' });
  const sources = (me.data?.me?.accounts ?? []).filter((a) => a.kind === 'CHECKING' || a.kind === 'SAVINGS');
  const [from, setFrom] = useState<string>('');
  const [to, setTo] = useState('');
  const [amount, setAmount] = useState('');
  const [note, setNote] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const form = useMovementForm();
  const [send, { loading }] = useMutation(SEND, { refetchQueries: [ME, HISTORY] });
  const fromId = from || sources[0]?.id || '';
  const currency = sources.find((a) => a.id === fromId)?.currency ?? 'USD';
  const edit =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v);
      setDone(null);
      form.edited();
    };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string> = {};
    const amountError = amountInputError(amount);
    if (amountError) local.amount = amountError;
    if (!to.trim()) local.toHandle = 'Enter the handle of who you are paying.';
    if (Object.keys(local).length) return form.setErrors(local);
    try {
      const res = await send({
        variables: {
          input: {
            fromAccountId: fromId,
            toHandle: to.trim().replace(/^@/, ''),
            amount: { amount: amount.trim(), currency },
            ...(note.trim() ? { note: note.trim() } : {}),
            idempotencyKey: form.key(),
          },
        },
      });
      const payload = res.data?.sendTransfer;
      if (!payload) return form.failed('No answer from the server.');
      form.answered(payload.userErrors, FIELDS);
      if (payload.transfer) {
        setDone(`Sent ${money(payload.transfer.amount)} to @${payload.transfer.recipient.handle}.`);
        setAmount('');
        setNote('');
      }
    } catch (err) {
      form.failed(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <form className="panel" onSubmit={submit} noValidate aria-describedby={form.formError ? 'send-form-error' : undefined}>
      <Field id="fromAccountId" label="From" error={form.errors.fromAccountId}>
        <select value={fromId} onChange={(e) => edit(setFrom)(e.target.value)}>
          {sources.map((a) => (
            <option key={a.id} value={a.id}>
              {accountName(a)}
              {a.balance ? ` (${money(a.balance.available)} available)` : ''}
            </option>
          ))}
        </select>
      </Field>
      <Field id="toHandle" label="To (handle)" error={form.errors.toHandle} hint="e.g. bob">
        <input type="text" autoComplete="off" spellCheck={false} value={to} onChange={(e) => edit(setTo)(e.target.value)} />
      </Field>
      <Field id="amount" label={`Amount (${currency})`} error={form.errors.amount}>
        <input type="text" inputMode="decimal" autoComplete="off" value={amount} onChange={(e) => edit(setAmount)(e.target.value)} />
      </Field>
      <Field id="note" label="Note (optional)" error={form.errors.note}>
        <input type="text" maxLength={280} value={note} onChange={(e) => edit(setNote)(e.target.value)} />
      </Field>
      {form.formError ? (
        <p id="send-form-error" className="field-error" role="alert">
          {form.formError}
        </p>
      ) : null}
      <button type="submit" disabled={loading || !fromId}>
        {loading ? 'Sending…' : 'Send'}
      </button>
      <p role="status" className="success">
        {done}
      </p>
    </form>
  );
}
