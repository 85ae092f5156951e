import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { InvalidExpiry, InvalidTimestamp, ZeroPoints } from '../errors.js'
import { answerOnce } from '../http/write-path.js'
import { IdempotencyHeaders, PageQuery, bodyErrors, errorFields, errorResponses } from '../schemas.js'
import { Type } from 'typebox'
import type { NewAdd } from './ledger.js'
import {
  AddBatchBody, AddBatchResult, AddBody, BatchRejectedError, BalanceQuery, Balances, SpendBody, SpendQuery, SpendResult, SpendPage, Transaction,
  TransactionPage
} from './schemas.js'
import { ledgerRouting, storedTime, type PointsRoutesOptions } from './ledger-routing.js'
import { parseTimestamp } from './timestamp.js'

const addDescription =
  'Stores points a payer granted. A positive add is spent after every older one (by timestamp, ' +
  'then arrival). A negative add takes points back from that payer\'s oldest unspent points, and ' +
  'is refused (INSUFFICIENT_PAYER_POINTS) when the payer has fewer. Adds may arrive in any order: ' +
  'a backdated add takes over what negative adds had drawn from newer points, so the outcome does ' +
  'not depend on arrival order (spends already answered stay as they were). points must be a ' +
  'non-zero integer (ZERO_POINTS); no balance, held points included, may exceed 2^53−1 (BALANCE_TOO_LARGE); timestamp is ' +
  'RFC 3339 with a zone and at most millisecond precision (INVALID_TIMESTAMP).'

interface AddFields { payer: string, points: number, timestamp: string, expires_at?: string }

/** An add as the route takes it, checked and in its stored form; throws what it refuses. */
function newAdd ({ payer, points, timestamp, expires_at: expires }: AddFields): NewAdd {
  if (points === 0) throw new ZeroPoints()
  const parsed = parseTimestamp(timestamp)
  if (!parsed.ok) throw new InvalidTimestamp(parsed.reason)
  if (expires === undefined) return { payer, points, ts: parsed.utc }
  const expiresAt = storedTime('expires_at', expires)
  if (points < 0) throw new InvalidExpiry('is for positive adds only: a negative add takes points back and has none to expire')
  if (expiresAt <= parsed.utc) throw new InvalidExpiry('must be later than timestamp')
  return { payer, points, ts: parsed.utc, expiresAt }
}

function * storedForms (adds: AddFields[]): Generator<NewAdd> {
  for (const add of adds) yield newAdd(add)
}

/** The points ledger: add, spend, balance and their history, for the default or a user's ledger. */
const pointsRoutes: FastifyPluginAsyncTypebox<PointsRoutesOptions> = async (app, { perUser }) => {
  const { points } = app
  const { tags, params, notFound, codes, ledgerOf, settled } = ledgerRouting(app, perUser)

  for (const url of perUser ? ['/add'] : ['/add', '/addTransaction']) {
    app.post(url, {
      schema: {
        tags,
        ...params,
        headers: IdempotencyHeaders,
        summary: url === '/add' ? 'Add points from a payer' : 'Add points from a payer (alias of /add)',
        description: addDescription,
        body: AddBody,
        response: {
          200: Transaction,
          ...errorResponses([...bodyErrors, ...notFound], { ...codes, 400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'ZERO_POINTS', 'INVALID_TIMESTAMP', 'INSUFFICIENT_PAYER_POINTS', 'BALANCE_TOO_LARGE'] })
        }
      }
    }, async (request, reply) => await answerOnce(request, reply, 200, points.add(ledgerOf(request), newAdd(request.body))))
  }

  app.post('/add/batch', {
    // A batch of 10 000 adds is about 700 KiB of JSON: 4 MiB leaves room for long payer names.
    bodyLimit: 4 * 1024 * 1024,
    schema: {
      tags,
      ...params,
      headers: IdempotencyHeaders,
      summary: 'Add up to 10 000 adds at once, all or none',
      description:
        'Bulk import: the adds are stored in order, each exactly as POST /add would store it (a ' +
        'negative add draws down what the adds before it left; a backdated add takes over draws), ' +
        'all in one transaction. If any add is refused, nothing is stored and the answer is ' +
        'BATCH_REJECTED with the `index` of the first add refused and why: the adds are checked ' +
        'in order as they are stored, so that is the add one at a time would have refused first, ' +
        'whichever rule refuses it. The adds share one created_at. Bodies up to 4 MiB.',
      body: AddBatchBody,
      response: {
        200: AddBatchResult,
        ...errorResponses([413, 415, ...notFound], codes),
        400: BatchRejectedError,
        413: Type.Object(errorFields, { description: 'Body over 4 MiB (BODY_TOO_LARGE)' })
      }
    }
  }, async (request, reply) => await answerOnce(request, reply, 200,
    // Checked one by one as they are stored, so the add named is the first refused by any rule.
    points.addBatch(ledgerOf(request), storedForms(request.body.adds))))

  app.post('/spend', {
    schema: {
      tags,
      ...params,
      headers: IdempotencyHeaders,
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
        ...errorResponses([...bodyErrors, ...notFound], { ...codes, 400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY', 'INSUFFICIENT_POINTS'] })
      }
    }
  }, async (request, reply) => {
    // A dry run writes nothing: without a key it is a read, and waits for no write lock.
    if (request.query.dry_run === true && request.headers['idempotency-key'] === undefined) {
      return await app.storage.read(points.spend(await settled(request), request.body.points, true))
    }
    const spend = points.spend(ledgerOf(request), request.body.points, request.query.dry_run === true)
    return await answerOnce(request, reply, 200, spend)
  })

  app.get('/balance', {
    schema: {
      tags,
      ...params,
      summary: 'Points per payer, available now or at a past moment',
      description:
        'Every payer that has a transaction, zero balances included, keys sorted: the points available ' +
        'to spend, so neither expired nor held ones. Read from a maintained row per payer, not summed ' +
        'from history. With `at`, what this answered at that instant (payers with no transaction by ' +
        'then left out), expirations and holds included: one read per payer of the balance history ' +
        'index. An `at` in the future is INVALID_TIMESTAMP.',
      querystring: BalanceQuery,
      response: { 200: Balances, ...errorResponses([400, ...notFound], { ...codes, 400: ['INVALID_REQUEST', 'INVALID_TIMESTAMP'] }) }
    }
  }, async (request, reply) => {
    const at = request.query.at === undefined ? undefined : storedTime('at', request.query.at)
    const ledgerId = await settled(request)
    const rows = at === undefined ? await points.balances(ledgerId) : await points.balancesAt(ledgerId, at)
    // Built by hand: a JS object would put integer-like payer names ("10") before the others.
    // Fastify sends a string as it is; the cast tells the type provider so.
    const body = rows.map(row => `${JSON.stringify(row.payer)}:${row.points}`).join(',')
    return reply.type('application/json; charset=utf-8').send(`{${body}}` as unknown as Record<string, number>)
  })

  app.get('/transactions', {
    schema: {
      tags,
      ...params,
      summary: 'History of adds, newest first',
      description: 'Every add with what it still has (positive adds) or which adds it currently reduces (negative adds). Paginated with cursor and limit.',
      querystring: PageQuery,
      response: { 200: TransactionPage, ...errorResponses([400, ...notFound], codes) }
    }
  }, async (request) => await points.listTransactions(await settled(request), request.query))

  app.get('/spends', {
    schema: {
      tags,
      ...params,
      summary: 'History of spends, newest first',
      description: 'Every spend with the adds it drew from and how much from each. Paginated with cursor and limit.',
      querystring: PageQuery,
      response: { 200: SpendPage, ...errorResponses([400, ...notFound], codes) }
    }
  }, async (request) => await points.listSpends(await settled(request), request.query))
}

export default pointsRoutes
