import { Type } from 'typebox'
import { NextCursor, errorFields } from '../schemas.js'

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
  })
}, {
  additionalProperties: false,
  examples: [{ payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' }]
})

export const Transaction = Type.Object({
  id: Type.Integer(),
  payer: Type.String(),
  points: Type.Integer(),
  timestamp: Type.String({ description: 'UTC' })
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
    remaining: Type.Union([Type.Integer(), Type.Null()], { description: 'A positive add: points it still has. A negative add: null' }),
    drawn_from: Type.Array(Draw, { description: 'A negative add: the adds it currently reduces. A positive add: empty' })
  })),
  next_cursor: NextCursor
})

export const SpendPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    points: Type.Integer(),
    created_at: Type.String(),
    drawn_from: Type.Array(Draw, { description: 'The adds this spend drew from, oldest first' })
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
