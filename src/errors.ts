import { STATUS_CODES } from 'node:http'
import createError from '@fastify/error'
import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

// Domain errors: a stable `code`, a status, and a message that says why.
export const InsufficientPoints = createError<[number, number]>(
  'INSUFFICIENT_POINTS', 'Cannot spend %s points: the balance is %s', 400)
export const InsufficientPayerPoints = createError<[string, number, number]>(
  'INSUFFICIENT_PAYER_POINTS', 'Payer %s has %s points; cannot take %s', 400)
export const ZeroPoints = createError('ZERO_POINTS', 'points must not be zero', 400)
export const BalanceTooLarge = createError<[string]>(
  'BALANCE_TOO_LARGE', 'The resulting balance of %s would exceed 9007199254740991', 400)
export const InvalidTimestamp = createError<[string]>('INVALID_TIMESTAMP', 'timestamp %s', 400)
export const UserNotFound = createError<[number]>('USER_NOT_FOUND', 'User %s not found', 404)
export const EmailTaken = createError<[string]>('EMAIL_TAKEN', 'The email %s is already taken', 409)
export const InsufficientCredits = createError<[number, number]>(
  'INSUFFICIENT_CREDITS', 'Cannot deduct %s credits: the balance is %s', 400)
export const CreditsTooLarge = createError('CREDITS_TOO_LARGE', 'The resulting balance would exceed 9007199254740991 credits', 400)
export const EventOutOfOrder = createError<[number, number]>(
  'EVENT_OUT_OF_ORDER', 'Event time %s is before the user\'s last event at %s', 400)
export const InvalidAmount = createError<[string]>('INVALID_AMOUNT', 'amount %s', 400)
export const EventTimeRequired = createError('EVENT_TIME_REQUIRED', 'Send exactly one of time and t', 400)
export const InvalidIdempotencyKey = createError(
  'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 visible ASCII characters, sent once', 400)
export const IdempotencyKeyReused = createError(
  'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for a different request (route or body)', 409)
export const ShuttingDown = createError(
  'SHUTTING_DOWN', 'The service is shutting down; nothing was changed, retry once it is back', 503)
// A JSON body tally cannot store as sent: not UTF-8, or a string with U+0000 or a lone surrogate.
export const UnstorableText = createError<[string]>('INVALID_REQUEST', '%s', 400)
export const UnsupportedCharset = createError<[string]>(
  'UNSUPPORTED_MEDIA_TYPE', 'JSON bodies must be UTF-8; this one declares charset=%s', 415)
export const RouteNotFound = createError<[string, string]>('ROUTE_NOT_FOUND', 'Route %s %s not found', 404)

// Fastify's own errors, renamed to codes that read as tally's contract.
const fastifyCodes: Record<string, string> = {
  FST_ERR_VALIDATION: 'INVALID_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'EMPTY_BODY',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
  FST_ERR_BAD_URL: 'BAD_URL'
}

export interface ErrorBody {
  statusCode: number
  error: string
  message: string
  code: string
}

export function errorBody (statusCode: number, message: string, code: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] as string, message, code }
}

export function toErrorBody (err: FastifyError): ErrorBody {
  // Another process held the write lock past the busy timeout: nothing was written, retry.
  if (err.code === 'SQLITE_BUSY') return errorBody(503, 'The database is busy; nothing was changed, retry', 'DATABASE_BUSY')
  if (err instanceof ShuttingDown) return errorBody(503, err.message, err.code)
  const status = err.statusCode ?? 500
  if (status < 400 || status >= 500) {
    return errorBody(500, 'Internal Server Error: the request was not completed', 'INTERNAL_ERROR')
  }
  // Ours pass through; any other Fastify 4xx gets a generic code rather than a framework name.
  const code = fastifyCodes[err.code] ?? (err.code.startsWith('FST_') ? 'BAD_REQUEST' : err.code)
  return errorBody(status, err.message, code)
}

/** Every 4xx and 5xx leaves as {statusCode, error, message, code}; a 5xx's cause goes to the log only. */
export default fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const body = toErrorBody(err)
    if (body.statusCode >= 500) request.log.error({ err }, 'request failed')
    return reply.code(body.statusCode).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    const err = new RouteNotFound(request.method, request.url.replace(/\?.*$/, ''))
    return reply.code(404).send(toErrorBody(err))
  })
}, { name: 'errors' })
