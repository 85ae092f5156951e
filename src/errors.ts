import { STATUS_CODES } from 'node:http'
import createError from '@fastify/error'
import type { FastifyError, FastifyInstance, HTTPMethods } from 'fastify'
import fp from 'fastify-plugin'
import { pgTrouble } from './storage/postgres/errors.js'

// Domain errors: a stable `code`, a status, and a message that says why.
export const InsufficientPoints = createError<[number, number]>(
  'INSUFFICIENT_POINTS', 'Cannot spend %s points: the balance is %s', 400)
export const InsufficientPayerPoints = createError<[string, number, number]>(
  'INSUFFICIENT_PAYER_POINTS', 'Payer %s has %s points; cannot take %s', 400)
export const ZeroPoints = createError('ZERO_POINTS', 'points must not be zero', 400)
export const BalanceTooLarge = createError<[string]>(
  'BALANCE_TOO_LARGE', 'The resulting balance of %s would exceed 9007199254740991', 400)
export const InvalidTimestamp = createError<[string]>('INVALID_TIMESTAMP', 'timestamp %s', 400)
/** INVALID_TIMESTAMP for a time field other than an add's timestamp: its name, then why. */
export const InvalidTime = createError<[string, string]>('INVALID_TIMESTAMP', '%s %s', 400)
export const InvalidExpiry = createError<[string]>('INVALID_EXPIRY', 'expires_at %s', 400)
export const SpendNotFound = createError<[number]>('SPEND_NOT_FOUND', 'Spend %s not found in this ledger', 404)
export const ReversalExceedsSpend = createError<[number, number, number]>(
  'REVERSAL_EXCEEDS_SPEND', 'Spend %s has %s points left to reverse; cannot reverse %s', 400)
export const SpendFullyReversed = createError<[number]>(
  'REVERSAL_EXCEEDS_SPEND', 'Spend %s is fully reversed: it has 0 points left to reverse', 400)
export const HoldNotFound = createError<[number]>('HOLD_NOT_FOUND', 'Hold %s not found in this ledger', 404)
export const HoldNotPending = createError<[number, string]>('HOLD_NOT_PENDING', 'Hold %s is %s, not pending: a hold is captured or released once', 409)
export const CaptureExceedsHold = createError<[number, number, number]>(
  'CAPTURE_EXCEEDS_HOLD', 'Hold %s holds %s points; cannot capture %s', 400)
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
export const DatabaseBusy = createError(
  'DATABASE_BUSY', 'The database is busy: another process held the write lock for 5 s; nothing was changed, retry', 503)
export const StorageUnavailable = createError(
  'STORAGE_UNAVAILABLE', 'The database cannot be written or read right now (disk full or I/O error); nothing was changed, retry later', 503)
export const TakesNoBody = createError('INVALID_REQUEST', 'This route takes no body (or {})', 400)
const BatchRejected = createError<[number, string, string]>(
  'BATCH_REJECTED', 'adds[%s] refused (%s): %s. Nothing of the batch was stored', 400)

/**
 * The refusal of a whole batch for its add at `index`, which `err` refused; carries `index`. An
 * error that is no refusal (storage trouble, a bug) is not the add's fault and stays as it is.
 */
export function batchRejected (index: number, err: unknown): unknown {
  const { statusCode, code, message } = err as { statusCode?: number, code: string, message: string }
  if (statusCode !== 400) return err
  return Object.assign(new BatchRejected(index, code, message), { index })
}
export const ForbiddenKey = createError('FORBIDDEN_KEY',
  'The body is valid JSON but has a "__proto__" key or a "constructor" with a "prototype": these are refused, as they could change the prototype of objects built from the body', 400)
// A JSON body tally cannot store as sent: not UTF-8, or a string with U+0000 or a lone surrogate.
export const UnstorableText = createError<[string]>('INVALID_REQUEST', '%s', 400)
export const UnsupportedCharset = createError<[string]>(
  'UNSUPPORTED_MEDIA_TYPE', 'JSON bodies must be UTF-8; this one declares charset=%s', 415)
export const RouteNotFound = createError<[string, string]>('ROUTE_NOT_FOUND', 'Route %s %s not found', 404)
export const MethodNotAllowed = createError<[string, string, string]>(
  'METHOD_NOT_ALLOWED', 'Method %s is not allowed on %s; it takes %s', 405)
// The HTTP layer's refusals, made before any route runs (src/http/protocol-errors.ts).
export const MalformedRequest = createError<[string]>('MALFORMED_REQUEST', 'Malformed HTTP request: %s', 400)
export const HeadersTooLarge = createError('HEADERS_TOO_LARGE', 'The request line and headers together are over 16 KiB', 431)
export const RequestTimeout = createError('REQUEST_TIMEOUT', 'The request did not arrive in time', 408)
export const ExpectationFailed = createError('EXPECTATION_FAILED', 'The only Expect header tally meets is Expect: 100-continue', 417)

// Fastify's own errors, renamed to codes that read as tally's contract.
const fastifyCodes: Record<string, string> = {
  FST_ERR_VALIDATION: 'INVALID_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'EMPTY_BODY',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
  FST_ERR_BAD_URL: 'BAD_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'URI_TOO_LONG'
}

export interface ErrorBody {
  statusCode: number
  error: string
  message: string
  code: string
  /** BATCH_REJECTED only: the index of the first add refused. */
  index?: number
}

export function errorBody (statusCode: number, message: string, code: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] as string, message, code }
}

// SQLite's result codes for trouble with the file or the machine, not with the request;
// better-sqlite3 puts the extended code in err.code (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT).
const STORAGE_TROUBLE = /^SQLITE_(FULL|IOERR|NOMEM|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL)(_|$)/
const BUSY = /^SQLITE_BUSY(_|$)/
const codeOf = (err: unknown): string => String((err as { code?: unknown } | null)?.code)

/** SQLite found the write lock held by another connection. */
export const isBusy = (err: unknown): boolean => BUSY.test(codeOf(err))

/** The 503s: nothing was changed, and the client should retry. */
const unavailable = new Set(['SHUTTING_DOWN', 'DATABASE_BUSY', 'STORAGE_UNAVAILABLE'])

export function toErrorBody (err: FastifyError): ErrorBody {
  const pg = pgTrouble(err)
  if (isBusy(err) || pg === 'DATABASE_BUSY') return toErrorBody(new DatabaseBusy())
  if (STORAGE_TROUBLE.test(err.code) || pg === 'STORAGE_UNAVAILABLE') return toErrorBody(new StorageUnavailable())
  if (unavailable.has(err.code)) return errorBody(503, err.message, err.code)
  const status = err.statusCode ?? 500
  if (status < 400 || status >= 500) {
    return errorBody(500, 'Internal Server Error: the request was not completed', 'INTERNAL_ERROR')
  }
  // Ours pass through; any other Fastify 4xx gets a generic code rather than a framework name.
  const code = fastifyCodes[err.code] ?? (err.code.startsWith('FST_') ? 'BAD_REQUEST' : err.code)
  const body = errorBody(status, err.message, code)
  const { index } = err as FastifyError & { index?: number }
  return index === undefined ? body : { ...body, index }
}

/**
 * Every 4xx and 5xx leaves as {statusCode, error, message, code}; a 5xx's cause goes to the log
 * only, once (the database's 503s through app.dbTrouble).
 */
export default fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const body = toErrorBody(err)
    // A 503 of the database's is logged when it starts and when it clears, not per request.
    if (body.code === 'DATABASE_BUSY' || body.code === 'STORAGE_UNAVAILABLE') request.server.dbTrouble.report(body.code, err)
    else if (body.statusCode >= 500) request.log.error({ err }, 'request failed')
    return reply.code(body.statusCode).send(body)
  })
  // A path some route takes, called with another method: 405 and the methods it takes (RFC 9110),
  // answered before any body is parsed, so the body cannot turn it into a 400.
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.is404) return done()
    const allow = app.supportedMethods.filter(method => app.findRoute({ method: method as HTTPMethods, url: request.url }) !== null)
    if (allow.length === 0) return done()
    const methods = allow.join(', ')
    reply.code(405).header('allow', methods)
      .send(toErrorBody(new MethodNotAllowed(request.method, request.url.replace(/\?.*$/, ''), methods)))
  })
  app.setNotFoundHandler((request, reply) => {
    const err = new RouteNotFound(request.method, request.url.replace(/\?.*$/, ''))
    return reply.code(404).send(toErrorBody(err))
  })
}, { name: 'errors' })
