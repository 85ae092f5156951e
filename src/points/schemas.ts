import { Type } from 'typebox'
import { NextCursor } from '../schemas.js'

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
