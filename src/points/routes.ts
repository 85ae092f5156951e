import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { InvalidTimestamp, ZeroPoints } from '../errors.js'
import { PageQuery, bodyErrors, errorResponses } from '../schemas.js'
import type { PointsRepository } from './repository.js'
import { AddBody, Balances, SpendBody, SpendQuery, SpendResult, SpendPage, Transaction, TransactionPage } from './schemas.js'
import { parseTimestamp } from './timestamp.js'

export interface PointsRoutesOptions {
  points: PointsRepository
  /** Which ledger these routes serve: 0 for the default ledger. */
  ledgerId: number
}

const addDescription =
  'Stores points a payer granted. A positive add is spent after every older one (by timestamp, ' +
  'then arrival). A negative add takes points back from that payer\'s oldest unspent points, and ' +
  'is refused (INSUFFICIENT_PAYER_POINTS) when the payer has fewer. Adds may arrive in any order: ' +
  'a backdated add takes over what negative adds had drawn from newer points, so the outcome does ' +
  'not depend on arrival order (spends already answered stay as they were). points must be a ' +
  'non-zero integer (ZERO_POINTS); no balance may exceed 2^53−1 (BALANCE_TOO_LARGE); timestamp is ' +
  'RFC 3339 with a zone and at most millisecond precision (INVALID_TIMESTAMP).'

/** The points ledger: add, spend, balance and their history, for one ledger. */
const pointsRoutes: FastifyPluginAsyncTypebox<PointsRoutesOptions> = async (app, { points, ledgerId }) => {
  for (const url of ['/add', '/addTransaction']) {
    app.post(url, {
      schema: {
        tags: ['points'],
        summary: url === '/add' ? 'Add points from a payer' : 'Add points from a payer (alias of /add)',
        description: addDescription,
        body: AddBody,
        response: {
          200: Transaction,
          ...errorResponses(bodyErrors, { 400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'ZERO_POINTS', 'INVALID_TIMESTAMP', 'INSUFFICIENT_PAYER_POINTS', 'BALANCE_TOO_LARGE'] })
        }
      }
    }, async (request) => {
      const { payer, points: amount, timestamp } = request.body
      if (amount === 0) throw new ZeroPoints()
      const parsed = parseTimestamp(timestamp)
      if (!parsed.ok) throw new InvalidTimestamp(parsed.reason)
      return points.add(ledgerId, { payer, points: amount, ts: parsed.utc })
    })
  }

  app.post('/spend', {
    schema: {
      tags: ['points'],
      summary: 'Spend points, oldest first',
      description:
        'Draws points oldest timestamp first across all payers (equal timestamps in arrival ' +
        'order); no payer goes below zero. Answers one entry per payer in the order of each ' +
        'payer\'s first deduction. More than the total balance is refused whole ' +
        '(INSUFFICIENT_POINTS). With dry_run=true the answer is the same and nothing changes.',
      querystring: SpendQuery,
      body: SpendBody,
      response: {
        200: SpendResult,
        ...errorResponses(bodyErrors, { 400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'INSUFFICIENT_POINTS'] })
      }
    }
  }, async (request) => points.spend(ledgerId, request.body.points, request.query.dry_run))

  app.get('/balance', {
    schema: {
      tags: ['points'],
      summary: 'Points per payer',
      description: 'Every payer that has a transaction, zero balances included, keys sorted. Read from a maintained row per payer, not summed from history.',
      response: { 200: Balances, ...errorResponses([]) }
    }
  }, async (_request, reply) => {
    // Built by hand: a JS object would put integer-like payer names ("10") before the others.
    // Fastify sends a string as it is; the cast tells the type provider so.
    const body = points.balances(ledgerId).map(row => `${JSON.stringify(row.payer)}:${row.points}`).join(',')
    return reply.type('application/json; charset=utf-8').send(`{${body}}` as unknown as Record<string, number>)
  })

  app.get('/transactions', {
    schema: {
      tags: ['points'],
      summary: 'History of adds, newest first',
      description: 'Every add with what it still has (positive adds) or which adds it currently reduces (negative adds). Paginated with cursor and limit.',
      querystring: PageQuery,
      response: { 200: TransactionPage, ...errorResponses([400]) }
    }
  }, async (request) => points.listTransactions(ledgerId, request.query))

  app.get('/spends', {
    schema: {
      tags: ['points'],
      summary: 'History of spends, newest first',
      description: 'Every spend with the adds it drew from and how much from each. Paginated with cursor and limit.',
      querystring: PageQuery,
      response: { 200: SpendPage, ...errorResponses([400]) }
    }
  }, async (request) => points.listSpends(ledgerId, request.query))
}

export default pointsRoutes
