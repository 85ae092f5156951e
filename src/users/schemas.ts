import { Type } from 'typebox'
import { NextCursor } from '../schemas.js'

export const UserIdParams = Type.Object({
  userId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'A user id, an integer ≥ 1' })
}, { additionalProperties: false })

export const NewUser = Type.Object({
  email: Type.String({ format: 'email', maxLength: 254, description: 'An ASCII email address, unique in any letter case' }),
  name: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', description: '1 to 200 characters, not blank' })
}, { additionalProperties: false, examples: [{ email: 'ada@example.com', name: 'Ada Lovelace' }] })

export const User = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  name: Type.String(),
  credits: Type.Integer(),
  created_at: Type.String()
}, { examples: [{ id: 1, email: 'ada@example.com', name: 'Ada Lovelace', credits: 0, created_at: '2026-11-22T09:00:00.000Z' }] })

export const UserPage = Type.Object({ items: Type.Array(User), next_cursor: NextCursor })
