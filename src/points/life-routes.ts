import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { answerOnce } from '../http/write-path.js'
import { IdempotencyHeaders, PageQuery, bodyErrors, errorResponses } from '../schemas.js'
import { ledgerRouting, storedTime, type PointsRoutesOptions } from './ledger-routing.js'
import {
  BalanceDetails, CaptureBody, CaptureResult, ExpirationPage, Hold, HoldBody, HoldIdParams, HoldPage, HoldStatusQuery, Reversal,
  ReversalBody, ReversalPage, SpendIdParams, VoidBody
} from './schemas.js'

/**
 * The life of a point past add and spend: holds (reserve, capture, void), reversals of spends,
 * expirations, and balances in detail, for the default or a user's ledger. Every write settles
 * the ledger's expiries first, inside its transaction; every read first settles a due ledger.
 */
const pointLifeRoutes: FastifyPluginAsyncTypebox<PointsRoutesOptions> = async (app, { perUser }) => {
  const { points } = app
  const { tags, params, notFound, codes, ledgerOf, paramsWith, settled } = ledgerRouting(app, perUser)
  const holdParams = paramsWith(HoldIdParams)
  const spendParams = paramsWith(SpendIdParams)
  const userCodes = perUser ? ['USER_NOT_FOUND'] : []

  app.post('/holds', {
    schema: {
      tags,
      ...params,
      headers: IdempotencyHeaders,
      summary: 'Hold points at checkout',
      description:
        'Draws `points` now, in the draw order (POINTS_DRAW_ORDER), and keeps them out of the ' +
        'available balance until the hold is captured (POST /holds/:holdId/capture), voided ' +
        '(POST /holds/:holdId/void) or reaches its expires_at, when it is expired and its points ' +
        'are available again from that instant. More than the available balance is ' +
        'INSUFFICIENT_POINTS; an expires_at not later than now is INVALID_EXPIRY.',
      body: HoldBody,
      response: {
        201: Hold,
        ...errorResponses([...bodyErrors, ...notFound], { ...codes, 400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'INSUFFICIENT_POINTS', 'INVALID_EXPIRY', 'INVALID_TIMESTAMP'] })
      }
    }
  }, async (request, reply) => {
    const expiresAt = request.body.expires_at === undefined ? null : storedTime('expires_at', request.body.expires_at)
    return await answerOnce(request, reply, 201, points.hold(ledgerOf(request), request.body.points, expiresAt))
  })

  app.get('/holds', {
    schema: {
      tags,
      ...params,
      summary: 'Holds, newest first',
      description: 'Every hold with the adds it drew from, optionally only those with one status. Paginated with cursor and limit.',
      querystring: HoldStatusQuery,
      response: { 200: HoldPage, ...errorResponses([400, ...notFound], codes) }
    }
  }, async (request) => await points.listHolds(await settled(request), request.query.status, request.query))

  app.get('/holds/:holdId', {
    schema: {
      tags,
      ...holdParams,
      summary: 'One hold',
      description: 'The hold as POST /holds answered it, with its status now (a captured one with `captured` and `spend_id`).',
      response: { 200: Hold, ...errorResponses([400, 404], { 404: ['HOLD_NOT_FOUND', ...userCodes] }) }
    }
  }, async (request) => await points.getHold(await settled(request), request.params.holdId))

  app.post('/holds/:holdId/capture', {
    schema: {
      tags,
      ...holdParams,
      headers: IdempotencyHeaders,
      summary: 'Capture a hold into a spend',
      description:
        'Turns `points` of a pending hold (all when omitted) into a spend, drawn from the hold\'s ' +
        'adds in the hold\'s order; the rest goes back to the same adds (points of an add past its ' +
        'expiry expire at once). The spend is listed in GET /spends and can be reversed. A hold ' +
        'resolves once: one that is captured, voided or expired is HOLD_NOT_PENDING.',
      body: CaptureBody,
      response: {
        200: CaptureResult,
        ...errorResponses([...bodyErrors, 404, 409], {
          400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'CAPTURE_EXCEEDS_HOLD'],
          404: ['HOLD_NOT_FOUND', ...userCodes],
          409: ['HOLD_NOT_PENDING']
        })
      }
    }
  }, async (request, reply) => await answerOnce(request, reply, 200,
    points.capture(ledgerOf(request), request.params.holdId, request.body.points)))

  app.post('/holds/:holdId/void', {
    schema: {
      tags,
      ...holdParams,
      headers: IdempotencyHeaders,
      summary: 'Void a hold',
      description:
        'Gives every held point back to the add it came from (points of an add past its expiry ' +
        'expire at once). A hold resolves once: one that is captured, voided or expired is HOLD_NOT_PENDING.',
      body: VoidBody,
      response: {
        200: Hold,
        ...errorResponses([...bodyErrors, 404, 409], {
          400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY'],
          404: ['HOLD_NOT_FOUND', ...userCodes],
          409: ['HOLD_NOT_PENDING']
        })
      }
    }
  }, async (request, reply) => await answerOnce(request, reply, 200, points.void(ledgerOf(request), request.params.holdId)))

  app.post('/spends/:spendId/reversals', {
    schema: {
      tags,
      ...spendParams,
      headers: IdempotencyHeaders,
      summary: 'Reverse a spend (a refund)',
      description:
        'Gives `points` of a spend (all not yet reversed when omitted) back to exactly the adds it ' +
        'drew from, the last drawn first: a partial reversal undoes the newest draws. Points given ' +
        'back to an add past its expiry expire at once (GET /expirations). More than is left to ' +
        'reverse is REVERSAL_EXCEEDS_SPEND, saying how much is left. A reversal that would take a ' +
        'payer or the ledger past 2^53−1, held points included, is BALANCE_TOO_LARGE.',
      body: ReversalBody,
      response: {
        201: Reversal,
        ...errorResponses([...bodyErrors, 404], {
          400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'REVERSAL_EXCEEDS_SPEND', 'BALANCE_TOO_LARGE'],
          404: ['SPEND_NOT_FOUND', ...userCodes]
        })
      }
    }
  }, async (request, reply) => await answerOnce(request, reply, 201,
    points.reverse(ledgerOf(request), request.params.spendId, request.body.points)))

  app.get('/spends/:spendId/reversals', {
    schema: {
      tags,
      ...spendParams,
      summary: 'A spend\'s reversals, newest first',
      description: 'Each reversal of the spend with the adds it gave points back to. Another ledger\'s spend, or none, is SPEND_NOT_FOUND. Paginated with cursor and limit.',
      querystring: PageQuery,
      response: { 200: ReversalPage, ...errorResponses([400, 404], { 404: ['SPEND_NOT_FOUND', ...userCodes] }) }
    }
  }, async (request) => await points.listReversals(await settled(request), request.params.spendId, request.query))

  app.get('/expirations', {
    schema: {
      tags,
      ...params,
      summary: 'Points that expired, newest first',
      description:
        'One entry per add and moment: an add\'s points left at its expires_at, or points that came ' +
        'back to it after (a released hold, a reversal), which expire at once. Written by the ' +
        'first write to meet the add, or by the sweep that runs every minute. Paginated with cursor and limit.',
      querystring: PageQuery,
      response: { 200: ExpirationPage, ...errorResponses([400, ...notFound], codes) }
    }
  }, async (request) => await points.listExpirations(await settled(request), request.query))

  app.get('/balance/details', {
    schema: {
      tags,
      ...params,
      summary: 'Points per payer: available, held, and next expirations',
      description: 'Every payer of the ledger, keys sorted: `available` as GET /balance answers, `held` by pending holds, and `expiring`: its next expirations, soonest first, at most 10.',
      response: { 200: BalanceDetails, ...errorResponses(perUser ? [400, 404] : [], codes) }
    }
  }, async (request, reply) => {
    const rows = await points.balanceDetails(await settled(request))
    // Built by hand, as GET /balance: integer-like payer names keep their sorted place.
    const body = rows.map(({ payer, ...details }) => `${JSON.stringify(payer)}:${JSON.stringify(details)}`).join(',')
    return reply.type('application/json; charset=utf-8').send(`{${body}}` as unknown as Record<string, never>)
  })
}

export default pointLifeRoutes
