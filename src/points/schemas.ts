import { Type } from 'typebox'
import { NextCursor, PageQuery, errorFields } from '../schemas.js'

const MAX = Number.MAX_SAFE_INTEGER

export const Payer = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '\\S',
  description: 'Who granted the points: 1 to 64 characters, not blank, kept exactly as given'
})

export const AddBody = Type.Object({
  payer: Payer,
  points: Type.Integer({
    minimum: -MAX,
    maximum: MAX,
    description: 'A non-zero integer. Negative takes points back from this payer, oldest first'
  }),
  timestamp: Type.String({
    format: 'date-time',
    description: 'RFC 3339 with a zone, at most millisecond precision; stored as UTC'
  }),
  expires_at: Type.Optional(Type.String({
    format: 'date-time',
    description: 'Optional, positive adds only, later than timestamp (INVALID_EXPIRY). From this instant the points left are in no balance and no spend draws them; an instant already past stores the points expired (importing history). Same format as timestamp'
  }))
}, {
  additionalProperties: false,
  examples: [{ payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' }, { payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z', expires_at: '2023-10-31T10:00:00Z' }]
})

export const Transaction = Type.Object({
  id: Type.Integer(),
  payer: Type.String(),
  points: Type.Integer(),
  timestamp: Type.String({ description: 'UTC' }),
  expires_at: Type.Optional(Type.String({ description: 'UTC; only when the add has one' }))
}, { examples: [{ id: 1, payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' }] })

export const SpendBody = Type.Object({
  points: Type.Integer({ minimum: 1, maximum: MAX, description: 'How many points to spend, at least 1' })
}, { additionalProperties: false, examples: [{ points: 5000 }] })

export const SpendQuery = Type.Object({
  dry_run: Type.Optional(Type.Boolean({ default: false, description: 'true: answer what the spend would draw, change nothing' }))
}, { additionalProperties: false })

export const PayerPoints = Type.Object({
  payer: Type.String(),
  points: Type.Integer({ description: 'Negative: what was drawn from this payer' })
})

export const SpendResult = Type.Array(PayerPoints, {
  description: 'One entry per payer, in the order of each payer\'s first deduction',
  examples: [[{ payer: 'DANNON', points: -100 }, { payer: 'UNILEVER', points: -200 }, { payer: 'MILLER COORS', points: -4700 }]]
})

export const BalanceQuery = Type.Object({
  at: Type.Optional(Type.String({ description: 'An instant, RFC 3339 with a zone, not in the future (INVALID_TIMESTAMP): the balances as GET /balance answered then' }))
}, { additionalProperties: false })

export const Balances = Type.Record(Type.String(), Type.Integer(), {
  description: 'Points per payer, every payer that has a transaction, zero included, keys sorted',
  examples: [{ DANNON: 1000, 'MILLER COORS': 5300, UNILEVER: 0 }]
})

const Draw = Type.Object({
  transaction_id: Type.Integer({ description: 'The add the points were drawn from' }),
  payer: Type.String(),
  timestamp: Type.String(),
  points: Type.Integer({ description: 'How many points were drawn from it' })
})

export const TransactionPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    payer: Type.String(),
    points: Type.Integer(),
    timestamp: Type.String(),
    created_at: Type.String({ description: 'When tally stored it (UTC)' }),
    remaining: Type.Union([Type.Integer(), Type.Null()], { description: 'A positive add: points it still has available (not held, not expired). A negative add: null' }),
    drawn_from: Type.Array(Draw, { description: 'A negative add: the adds it currently reduces. A positive add: empty' }),
    expires_at: Type.Union([Type.String(), Type.Null()], { description: 'When its points expire; null: never' }),
    expired: Type.Union([Type.Integer(), Type.Null()], { description: 'A positive add: how many of its points expired. A negative add: null' })
  })),
  next_cursor: NextCursor
})

export const SpendPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    points: Type.Integer(),
    created_at: Type.String(),
    drawn_from: Type.Array(Draw, { description: 'The adds this spend drew from, in the order it drew them' }),
    reversed: Type.Integer({ description: 'How many of its points reversals gave back' })
  })),
  next_cursor: NextCursor
})

export const BATCH_MAX = 10_000

export const AddBatchBody = Type.Object({
  adds: Type.Array(AddBody, { minItems: 1, maxItems: BATCH_MAX, description: '1 to 10 000 adds, each exactly as POST /add takes it, stored in this order' })
}, {
  additionalProperties: false,
  examples: [{ adds: [{ payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' }, { payer: 'UNILEVER', points: 200, timestamp: '2022-10-31T11:00:00Z' }] }]
})

export const AddBatchResult = Type.Object({
  count: Type.Integer({ description: 'How many adds were stored' }),
  first_id: Type.Integer({ description: 'The id of the first add, as in GET /transactions' }),
  last_id: Type.Integer({ description: 'The id of the last; the others lie between, in order' })
}, { examples: [{ count: 2, first_id: 1, last_id: 2 }] })

export const BatchRejectedError = Type.Object({
  ...errorFields,
  index: Type.Optional(Type.Integer({ description: 'BATCH_REJECTED: the index in `adds` of the first add refused' }))
}, { description: 'Refused; nothing of the batch was stored. Codes: BATCH_REJECTED (with `index`: an add a rule refused, ZERO_POINTS, INVALID_TIMESTAMP, INSUFFICIENT_PAYER_POINTS, BALANCE_TOO_LARGE), INVALID_REQUEST (the body breaks the schema; the message names the field, e.g. body/adds/3/points), INVALID_JSON, EMPTY_BODY, INVALID_IDEMPOTENCY_KEY' })

// ---- Holds, reversals, expirations and balance details (issue 13) ----

const Time = (description: string) => Type.String({ format: 'date-time', description })

export const HoldBody = Type.Object({
  points: Type.Integer({ minimum: 1, maximum: MAX, description: 'How many points to hold, at least 1' }),
  expires_at: Type.Optional(Time('Optional, later than now (INVALID_EXPIRY): a hold still pending then is expired and its points are available again. Without it the hold lasts until captured or voided'))
}, { additionalProperties: false, examples: [{ points: 500 }, { points: 500, expires_at: '2026-12-01T00:00:00Z' }] })

export const CaptureBody = Type.Object({
  points: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX, description: 'How many of the held points to capture, at most the hold (CAPTURE_EXCEEDS_HOLD); omitted: all' }))
}, { additionalProperties: false, examples: [{}, { points: 300 }] })

export const VoidBody = Type.Object({}, { additionalProperties: false, description: 'Empty: {}' })

export const ReversalBody = Type.Object({
  points: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX, description: 'How many points to give back, at most what is not yet reversed (REVERSAL_EXCEEDS_SPEND); omitted: all of it' }))
}, { additionalProperties: false, examples: [{}, { points: 100 }] })

const Id = (description: string) => Type.Integer({ minimum: 1, maximum: MAX, description })
export const HoldIdParams = { holdId: Id('A hold id, as POST /holds answered it') }
export const SpendIdParams = { spendId: Id('A spend id, as GET /spends lists it') }

export const HoldStatusQuery = Type.Object({
  status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('captured'), Type.Literal('voided'), Type.Literal('expired')], { description: 'Only holds with this status' })),
  cursor: PageQuery.properties.cursor,
  limit: PageQuery.properties.limit
}, { additionalProperties: false })

const holdFields = {
  id: Type.Integer(),
  points: Type.Integer({ description: 'How many points it held' }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('captured'), Type.Literal('voided'), Type.Literal('expired')]),
  drawn_from: Type.Array(Draw, { description: 'The adds it drew from, in the order it drew them' }),
  expires_at: Type.Union([Type.String(), Type.Null()], { description: 'When it expires if still pending; null: never' }),
  created_at: Type.String(),
  captured: Type.Optional(Type.Integer({ description: 'A captured hold: how many points the capture took' })),
  spend_id: Type.Optional(Type.Integer({ description: 'A captured hold: the spend it became (GET /spends)' }))
}

export const Hold = Type.Object(holdFields, {
  examples: [{ id: 1, points: 500, status: 'pending', drawn_from: [{ transaction_id: 1, payer: 'DANNON', timestamp: '2022-10-31T10:00:00Z', points: 300 }, { transaction_id: 2, payer: 'UNILEVER', timestamp: '2022-10-31T11:00:00Z', points: 200 }], expires_at: null, created_at: '2026-11-23T09:00:00.000Z' }]
})

export const CaptureResult = Type.Object({
  ...holdFields,
  captured: Type.Integer({ description: 'How many points the capture took' }),
  spend_id: Type.Integer({ description: 'The spend it became (GET /spends)' }),
  spent: Type.Array(PayerPoints, { description: 'As a spend answers: one entry per payer, negative' })
})

export const HoldPage = Type.Object({ items: Type.Array(Hold), next_cursor: NextCursor })

export const Reversal = Type.Object({
  id: Type.Integer(),
  spend_id: Type.Integer(),
  points: Type.Integer({ description: 'How many points it gave back' }),
  restored_to: Type.Array(Draw, { description: 'The adds the points went back to: the spend\'s last draws first' }),
  created_at: Type.String()
}, { examples: [{ id: 1, spend_id: 1, points: 100, restored_to: [{ transaction_id: 2, payer: 'UNILEVER', timestamp: '2022-10-31T11:00:00Z', points: 100 }], created_at: '2026-11-23T09:00:00.000Z' }] })

export const ReversalPage = Type.Object({ items: Type.Array(Reversal), next_cursor: NextCursor })

export const ExpirationPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    transaction_id: Type.Integer({ description: 'The add whose points expired' }),
    payer: Type.String(),
    points: Type.Integer(),
    expired_at: Type.String({ description: 'The add\'s expires_at; or, for points that came back to it later (a released hold, a reversal), when they came back' })
  })),
  next_cursor: NextCursor
})

export const BalanceDetails = Type.Record(Type.String(), Type.Object({
  available: Type.Integer({ description: 'As GET /balance answers' }),
  held: Type.Integer({ description: 'Drawn by pending holds' }),
  expiring: Type.Array(Type.Object({ expires_at: Type.String(), points: Type.Integer() }), { description: 'Available points with an expiry, summed per instant, soonest first, at most 10' })
}), {
  description: 'Every payer of the ledger, keys sorted',
  examples: [{ DANNON: { available: 1000, held: 200, expiring: [{ expires_at: '2026-12-31T00:00:00Z', points: 300 }] } }]
})
