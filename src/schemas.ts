import { TakesNoBody } from './errors.js'
import { Type } from 'typebox'

// Schemas every domain uses: the error body, pagination.

export const errorFields = {
  statusCode: Type.Integer({ description: 'The HTTP status, repeated' }),
  error: Type.String({ description: 'The status text' }),
  message: Type.String({ description: 'What was wrong, for a person' }),
  code: Type.String({ description: 'A stable, machine-readable code' })
}

export const ErrorSchema = Type.Object(errorFields, { description: 'Every 4xx and 5xx body' })

export type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 415 | 500 | 503

const errorDescriptions: Record<ErrorStatus, string> = {
  400: 'Refused; nothing changed. `code` says why',
  401: 'Missing or wrong bearer token',
  404: 'Not found',
  409: 'Conflicts with what is stored; nothing changed',
  413: 'Body over 1 MiB (BODY_TOO_LARGE)',
  415: 'Body is not application/json in UTF-8 (UNSUPPORTED_MEDIA_TYPE)',
  500: 'A bug; the body carries no internals and the log has the cause',
  503: 'Not done, nothing changed; retry. Codes: SHUTTING_DOWN (the service is stopping), DATABASE_BUSY (a write waited 5 s for another process\'s write lock), STORAGE_UNAVAILABLE (disk full or an I/O error)'
}

/**
 * Response schemas for the error statuses a route can send, with the codes it uses for each.
 * Every route can also answer 500 (a bug) and 503 (stopping, or the file locked by another process).
 */
export function errorResponses (statuses: ErrorStatus[], codes: Partial<Record<ErrorStatus, string[]>> = {}): Record<number, typeof ErrorSchema> {
  const responses: Record<number, typeof ErrorSchema> = {}
  for (const status of [...statuses, 500 as const, 503 as const]) {
    const extra = codes[status]
    const description = errorDescriptions[status] +
      (extra !== undefined ? `. Codes: ${extra.join(', ')}` : '')
    responses[status] = Type.Object(errorFields, { description })
  }
  return responses
}

/** The error statuses of every route that takes a JSON body. */
export const bodyErrors: ErrorStatus[] = [400, 413, 415]

/** The header every write route honours; checked by answerOnce (INVALID_IDEMPOTENCY_KEY). */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    description: '1 to 255 visible ASCII characters. The first request with a key is applied and its answer stored with the write; a repeat with the same route and body gets that answer (header Idempotent-Replayed: true) and applies nothing; the same key with another route or body is 409 IDEMPOTENCY_KEY_REUSED. Kept IDEMPOTENCY_TTL_HOURS (24 h).'
  }))
})

/**
 * preValidation hook of write routes that take no body: none, or `{}`; anything else is refused
 * (INVALID_REQUEST). A hook, not a body schema: Fastify would validate an absent body too.
 */
export function refuseBody (request: { body: unknown }, _reply: unknown, done: (err?: Error) => void): void {
  const { body } = request
  const empty = body === undefined || (body !== null && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0)
  if (!empty) return done(new TakesNoBody())
  // {} is no body: the Idempotency-Key fingerprint of a retry must not depend on which was sent.
  request.body = undefined
  done()
}

/** For routes that take no query parameters: any is refused, so `POST /add?dry_run=true` cannot add for real. */
export const NoQuery = Type.Object({}, { additionalProperties: false })

/** onRoute hook: a route that declares no querystring takes none. */
export function refuseUndeclaredQuery (route: { schema?: { querystring?: unknown } }): void {
  route.schema = { ...route.schema, querystring: route.schema?.querystring ?? NoQuery }
}

const CANONICAL_INTEGER = /^-?(0|[1-9][0-9]*)$/

function parseValue (value: unknown): unknown {
  if (typeof value !== 'string') return value
  if (CANONICAL_INTEGER.test(value)) return Number(value)
  if (value === 'true' || value === 'false') return value === 'true'
  return value
}

/**
 * preValidation hook: path and query parameters arrive as text. Only a canonical integer
 * ("42", not "42 ", "1e3", "0x10" or "042") becomes a number and only true/false a boolean;
 * anything else stays text and so fails the schema with a clear 400, instead of Ajv's lenient
 * coercion reading "5 " as user 5.
 */
export function parseParameters (request: { params: unknown, query: unknown }, _reply: unknown, done: () => void): void {
  // A callback hook, not an async one: it runs on every request, and a promise each costs.
  for (const part of [request.params, request.query] as Array<Record<string, unknown>>) {
    for (const name in part) part[name] = parseValue(part[name])
  }
  done()
}

export const PageQuery = Type.Object({
  cursor: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'The `next_cursor` of the previous page; omit for the newest' })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Items per page, 1 to 500' })
}, { additionalProperties: false })

export const NextCursor = Type.Union([Type.Integer(), Type.Null()], {
  description: 'Pass as `cursor` for the next (older) page; null on the last page'
})
