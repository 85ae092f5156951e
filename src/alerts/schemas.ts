import { Type } from 'typebox'
import { AMOUNT_PATTERN } from '../money.js'
import { NextCursor } from '../schemas.js'

const MAX_TIME = 9_007_199_254_740 // keeps time × 1000 exact

const Time = Type.Integer({ minimum: 0, maximum: MAX_TIME, description: 'Seconds (or milliseconds with EVENT_TIME_UNIT=ms), not before the user\'s last event' })

export const EventBody = Type.Object({
  type: Type.Enum(['deposit', 'withdraw']),
  amount: Type.String({ pattern: AMOUNT_PATTERN, description: 'A positive decimal string with at most two decimals, like "42.00"' }),
  user_id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Need not have a user record: unknown ids are judged with the medium tier' }),
  time: Type.Optional(Time),
  t: Type.Optional({ ...Time, description: 'The original spec\'s name for time; send exactly one of the two' })
}, { additionalProperties: false, examples: [{ type: 'deposit', amount: '42.00', user_id: 1, time: 10 }] })

export const EventResult = Type.Object({
  alert: Type.Boolean({ description: 'true when any code fired' }),
  alert_codes: Type.Array(Type.Integer(), { description: 'Ascending' }),
  user_id: Type.Integer()
}, { examples: [{ alert: true, alert_codes: [30, 123], user_id: 1 }] })

const thresholdFields = {
  withdrawal_limit: Type.String({ pattern: AMOUNT_PATTERN, description: '1100: a withdrawal above this amount' }),
  consecutive_withdrawals: Type.Integer({ minimum: 2, maximum: 1000, description: '30: this many withdrawals in a row, this one included' }),
  increasing_deposits: Type.Integer({ minimum: 2, maximum: 1000, description: '300: this many strictly increasing deposits, this one included' }),
  deposit_window_seconds: Type.Integer({ minimum: 1, maximum: 31_536_000, description: '123: the deposit window, in seconds' }),
  deposit_window_limit: Type.String({ pattern: AMOUNT_PATTERN, description: '123: deposits in the window totalling more than this' }),
  velocity_window_seconds: Type.Integer({ minimum: 1, maximum: 31_536_000, description: '500: the velocity window, in seconds' }),
  velocity_count: Type.Integer({ minimum: 1, maximum: 1_000_000, description: '500: more than this many events in the window' })
}

export const ThresholdsSchema = Type.Object(thresholdFields)

export const Risk = Type.Enum(['low', 'medium', 'high'], {
  description: 'low: lenient, medium: the defaults, high: strict'
})

export const ProfileBody = Type.Object({
  risk: Risk,
  overrides: Type.Optional(Type.Partial(Type.Object(thresholdFields, { additionalProperties: false }), { additionalProperties: false }))
}, {
  additionalProperties: false,
  examples: [{ risk: 'high', overrides: { withdrawal_limit: '250.00', velocity_count: 4 } }]
})

export const Profile = Type.Object({
  user_id: Type.Integer(),
  risk: Risk,
  overrides: Type.Partial(ThresholdsSchema, { description: 'What this user has set over the tier' }),
  thresholds: Type.Object(thresholdFields, { description: 'The effective thresholds: the tier with the overrides' })
})

export const EventPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    type: Type.String(),
    amount: Type.String(),
    time: Type.Integer(),
    alert_codes: Type.Array(Type.Integer()),
    created_at: Type.String()
  })),
  next_cursor: NextCursor
})

export const AlertsQuery = Type.Object({
  user_id: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
  code: Type.Optional(Type.Integer({ enum: [30, 123, 300, 500, 1100], description: 'One alert code' })),
  cursor: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 })
}, { additionalProperties: false })

export const AlertPage = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    event_id: Type.Integer(),
    user_id: Type.Integer(),
    code: Type.Integer(),
    details: Type.Record(Type.String(), Type.Unknown(), { description: 'The figures that fired it: window bounds and total, the deposits compared, the limit' }),
    created_at: Type.String()
  })),
  next_cursor: NextCursor
})
