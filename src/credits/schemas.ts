import { Type } from 'typebox'
import { NextCursor } from '../schemas.js'

const MAX = Number.MAX_SAFE_INTEGER

export const Amount = Type.Object({
  amount: Type.Integer({ minimum: 1, maximum: MAX, description: 'An integer ≥ 1' })
}, { additionalProperties: false, examples: [{ amount: 10 }] })

export const ExternalCredits = Type.Object({
  credits: Type.Integer({ minimum: 0, maximum: MAX, description: 'The new balance, an integer ≥ 0' })
}, { additionalProperties: false, examples: [{ credits: 42 }] })

export const CreditBalance = Type.Object({
  user_id: Type.Integer(),
  credits: Type.Integer(),
  updated_at: Type.String({ description: 'When the balance last changed (UTC)' })
}, { examples: [{ user_id: 1, credits: 15, updated_at: '2026-11-22T09:00:00.000Z' }] })

export const CreditHistoryPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    kind: Type.Enum(['add', 'deduct', 'reset', 'external_update', 'daily_grant']),
    delta: Type.Integer({ description: 'The change: positive or negative, 0 for a reset of an empty balance' }),
    balance_after: Type.Integer(),
    created_at: Type.String()
  })),
  next_cursor: NextCursor
})
