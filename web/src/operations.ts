/**
 * The operations the app sends: the API's contract operations (docs/api.md), with the fields each
 * screen shows. Every object selects its `id`, so the normalized cache updates every screen from
 * any response (a balance after a send, an alert's status after resolving it).
 */
import { gql, type TypedDocumentNode } from '@apollo/client';

export interface Money {
  amount: string;
  currency: string;
}
export interface AccountRow {
  id: string;
  kind: string;
  /** Null, like `mask` and `balance`, when the user's consent to the institution does not cover it (CONSENT_REQUIRED). */
  displayName: string | null;
  mask: string | null;
  currency: string;
  institution: { id: string; name: string; kind: string };
  balance: { available: Money; current: Money; asOf: string } | null;
}
export interface Me {
  me: { id: string; name: string; handle: string; accounts: AccountRow[] } | null;
}

export const ME: TypedDocumentNode<Me> = gql`
  query MyBalances {
    me {
      id
      name
      handle
      accounts {
        id
        kind
        displayName
        mask
        currency
        institution {
          id
          name
          kind
        }
        balance {
          available {
            amount
            currency
          }
          current {
            amount
            currency
          }
          asOf
        }
      }
    }
  }
`;

export interface HistoryNode {
  id: string;
  kind: string;
  direction: 'DEBIT' | 'CREDIT';
  status: string;
  amount: Money;
  description: string;
  postedAt: string;
  merchant: { id: string; name: string; category: string; country: string } | null;
  counterparty: { id: string; handle: string; name: string } | null;
}
export interface HistoryData {
  account: {
    id: string;
    transactions: { totalCount: number; edges: { cursor: string; node: HistoryNode }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
  } | null;
}
export const HISTORY: TypedDocumentNode<HistoryData, { accountId: string; first?: number; after?: string | null }> = gql`
  query History($accountId: ID!, $first: Int, $after: String) {
    account(id: $accountId) {
      id
      transactions(first: $first, after: $after) {
        totalCount
        edges {
          cursor
          node {
            id
            kind
            direction
            status
            amount {
              amount
              currency
            }
            description
            postedAt
            merchant {
              id
              name
              category
              country
            }
            counterparty {
              id
              handle
              name
            }
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`;

export interface UserError {
  code: string;
  field: string[] | null;
  message: string;
}

export interface SendData {
  sendTransfer: {
    transfer: { id: string; status: string; amount: Money; note: string | null; recipient: { id: string; handle: string }; createdAt: string } | null;
    userErrors: UserError[];
  };
}
export interface SendVars {
  input: { fromAccountId: string; toHandle: string; amount: Money; note?: string; idempotencyKey: string };
}
export const SEND: TypedDocumentNode<SendData, SendVars> = gql`
  mutation SendMoney($input: SendTransferInput!) {
    sendTransfer(input: $input) {
      transfer {
        id
        status
        amount {
          amount
          currency
        }
        note
        from {
          id
        }
        recipient {
          id
          handle
        }
        createdAt
      }
      userErrors {
        code
        field
        message
      }
    }
  }
`;

export interface MerchantsData {
  merchants: { id: string; name: string; category: string; country: string }[];
}
export const MERCHANTS: TypedDocumentNode<MerchantsData, { first?: number }> = gql`
  query Merchants($first: Int) {
    merchants(first: $first) {
      id
      name
      category
      country
    }
  }
`;

export interface PayData {
  makePurchase: {
    purchase: { id: string; status: string; amount: Money; merchant: { id: string; name: string; country: string }; createdAt: string } | null;
    userErrors: UserError[];
  };
}
export interface PayVars {
  input: { accountId: string; merchantId: string; amount: Money; description?: string; idempotencyKey: string; cardPresent: boolean };
}
export const PAY: TypedDocumentNode<PayData, PayVars> = gql`
  mutation Pay($input: MakePurchaseInput!) {
    makePurchase(input: $input) {
      purchase {
        id
        status
        amount {
          amount
          currency
        }
        merchant {
          id
          name
          country
        }
        account {
          id
        }
        createdAt
      }
      userErrors {
        code
        field
        message
      }
    }
  }
`;

export interface RaisedAlert {
  id: string;
  cursor: string;
  status: string;
  riskScore: number;
  reasons: string[];
  purchase: { id: string; amount: Money; merchant: { id: string; name: string; country: string } };
  account: { id: string };
  createdAt: string;
}
/**
 * Live alerts, resumed by cursor: `$after` is the cursor of the last alert the app received
 * (alerts/resume.ts), so a (re)subscription first replays what was raised since, then goes live.
 */
export const CHARGE_ALERTS: TypedDocumentNode<{ chargeAlertRaised: RaisedAlert }, { after?: string | null }> = gql`
  subscription ChargeAlerts($after: String) {
    chargeAlertRaised(after: $after) {
      id
      cursor
      status
      riskScore
      reasons
      purchase {
        id
        amount {
          amount
          currency
        }
        merchant {
          id
          name
          country
        }
      }
      account {
        id
      }
      createdAt
    }
  }
`;

export interface AlertRow {
  id: string;
  cursor: string;
  status: string;
  riskScore: number;
  reasons: string[];
  purchase: { id: string; amount: Money; merchant: { id: string; name: string; country: string } };
  account: { id: string; displayName: string | null };
  createdAt: string;
}
export const MY_ALERTS: TypedDocumentNode<{ chargeAlerts: AlertRow[] }> = gql`
  query MyAlerts {
    chargeAlerts {
      id
      cursor
      status
      riskScore
      reasons
      purchase {
        id
        amount {
          amount
          currency
        }
        merchant {
          id
          name
          country
        }
      }
      account {
        id
        displayName
      }
      createdAt
    }
  }
`;

export interface ResolveData {
  resolveChargeAlert: { alert: { id: string; status: string } | null; userErrors: UserError[] };
}
export const RESOLVE: TypedDocumentNode<ResolveData, { id: string; fraudulent: boolean }> = gql`
  mutation ResolveAlert($id: ID!, $fraudulent: Boolean!) {
    resolveChargeAlert(id: $id, fraudulent: $fraudulent) {
      alert {
        id
        status
      }
      userErrors {
        code
        field
        message
      }
    }
  }
`;

export interface AccessRecord {
  id: string;
  at: string;
  purpose: string | null;
  /** The credential the caller's token was issued to, as the gateway verified it (null: none named). */
  clientId: string | null;
  /** The client name the caller declared: shown as declared, never as who it was. */
  client: string | null;
  operationName: string | null;
  operationHash: string;
  coordinates: string[];
  decision: string;
  reason: string | null;
  layer: string;
  /** Its leaf in the public log, the leaf's canonical JSON, and the salt of its subject commitment. */
  leafIndex: number;
  leaf: string;
  salt: string | null;
  subject: string | null;
}
export interface AccessLogData {
  me: {
    id: string;
    dataAccessLog: { totalCount: number; edges: { cursor: string; node: AccessRecord }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
  } | null;
}
/**
 * The user's data-access log with, for each record, what the browser needs to check it is in the
 * public log: its leaf index, the leaf, and its salt. The inclusion proof comes from the public
 * /audit/proof/inclusion for the size of the checkpoint the browser verified (verify/log.ts): a
 * proof is checked, not trusted, so where it comes from does not matter, and the cached log is
 * not re-read each time a new checkpoint arrives.
 */
export const ACCESS_LOG: TypedDocumentNode<AccessLogData, { first?: number; after?: string | null }> = gql`
  query DataAccessLog($first: Int, $after: String) {
    me {
      id
      dataAccessLog(first: $first, after: $after) {
        totalCount
        edges {
          cursor
          node {
            id
            at
            purpose
            clientId
            client
            operationName
            operationHash
            coordinates
            decision
            reason
            layer
            leafIndex
            leaf
            salt
            subject
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`;

export interface ConsentRow {
  id: string;
  institution: { id: string; name: string };
  scopes: string[];
  status: 'ACTIVE' | 'EXPIRED' | 'REVOKED';
  grantedAt: string;
  expiresAt: string;
  revokedAt: string | null;
}
export const MY_CONSENTS: TypedDocumentNode<{ me: { id: string; consents: ConsentRow[] } | null }> = gql`
  query MyConsents {
    me {
      id
      consents {
        id
        institution {
          id
          name
        }
        scopes
        status
        grantedAt
        expiresAt
        revokedAt
      }
    }
  }
`;

export interface Disclosure {
  institution: { id: string; name: string };
  version: string;
  text: string;
  maxDurationDays: number;
}
export const CONSENT_DISCLOSURE: TypedDocumentNode<{ consentDisclosure: Disclosure | null }, { institutionId: string }> = gql`
  query ConsentDisclosure($institutionId: ID!) {
    consentDisclosure(institutionId: $institutionId) {
      institution {
        id
        name
      }
      version
      text
      maxDurationDays
    }
  }
`;

export interface GrantVars {
  input: { institutionId: string; scopes: string[]; durationDays: number; disclosureVersion: string; idempotencyKey: string };
}
export interface GrantData {
  grantConsent: { consent: ConsentRow | null; userErrors: UserError[] };
}
export const GRANT_CONSENT: TypedDocumentNode<GrantData, GrantVars> = gql`
  mutation GrantConsent($input: GrantConsentInput!) {
    grantConsent(input: $input) {
      consent {
        id
        institution {
          id
          name
        }
        scopes
        status
        grantedAt
        expiresAt
        revokedAt
      }
      userErrors {
        code
        field
        message
      }
    }
  }
`;

export interface RevokeData {
  revokeConsent: { consent: { id: string; status: string; revokedAt: string | null } | null; userErrors: UserError[] };
}
export const REVOKE_CONSENT: TypedDocumentNode<RevokeData, { input: { consentId: string } }> = gql`
  mutation RevokeConsent($input: RevokeConsentInput!) {
    revokeConsent(input: $input) {
      consent {
        id
        status
        revokedAt
      }
      userErrors {
        code
        field
        message
      }
    }
  }
`;
