import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { answerOnce } from '../http/write-path.js'
import { IdempotencyHeaders, PageQuery, refuseBody, bodyErrors, errorResponses } from '../schemas.js'
import { UserIdParams } from '../users/schemas.js'
import { Amount, CreditBalance, CreditHistoryPage, ExternalCredits } from './schemas.js'

const notFound = { 404: ['USER_NOT_FOUND'] }
const tags = ['credits']

/** The credit-management API, at the seed API's exact paths under /api/credits. */
const creditsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { credits } = app
  app.get('/api/credits/:userId', {
    schema: {
      tags,
      summary: 'A user\'s credit balance',
      description: 'Read from the user row, which every change updates with its history entry in one transaction. Credits are granted daily (DAILY_CREDITS_AMOUNT, 5) at 00:00 UTC, at most once per user per day.',
      params: UserIdParams,
      response: { 200: CreditBalance, ...errorResponses([400, 404], notFound) }
    }
  }, async (request) => await credits.get(request.params.userId))

  app.post('/api/credits/:userId/add', {
    schema: {
      tags,
      headers: IdempotencyHeaders,
      summary: 'Add credits',
      description: 'Adds amount (≥ 1) to the balance and records an `add` entry in the history. A balance past 2^53−1 is refused (CREDITS_TOO_LARGE).',
      params: UserIdParams,
      body: Amount,
      response: { 200: CreditBalance, ...errorResponses([...bodyErrors, 404], { ...notFound, 400: ['INVALID_REQUEST', 'CREDITS_TOO_LARGE'] }) }
    }
  }, async (request, reply) => await answerOnce(request, reply, 200, credits.add(request.params.userId, request.body.amount)))

  app.post('/api/credits/:userId/deduct', {
    schema: {
      tags,
      headers: IdempotencyHeaders,
      summary: 'Deduct credits',
      description: 'Takes amount (≥ 1) from the balance; deducting exactly the balance is allowed, more is refused (INSUFFICIENT_CREDITS) and nothing changes.',
      params: UserIdParams,
      body: Amount,
      response: { 200: CreditBalance, ...errorResponses([...bodyErrors, 404], { ...notFound, 400: ['INVALID_REQUEST', 'INSUFFICIENT_CREDITS'] }) }
    }
  }, async (request, reply) => await answerOnce(request, reply, 200, credits.deduct(request.params.userId, request.body.amount)))

  app.patch('/api/credits/:userId/reset', {
    schema: {
      tags,
      headers: IdempotencyHeaders,
      summary: 'Reset credits to 0',
      description: 'Sets the balance to 0 and records a `reset` entry with the difference. Takes no body (or `{}`); any other body is refused.',
      params: UserIdParams,
      response: { 200: CreditBalance, ...errorResponses([...bodyErrors, 404], notFound) }
    },
    preValidation: refuseBody
  }, async (request, reply) => await answerOnce(request, reply, 200, credits.reset(request.params.userId)))

  app.post('/api/credits/:userId/external-update', {
    schema: {
      tags,
      headers: IdempotencyHeaders,
      summary: 'Set credits from an external system',
      description: 'Sets the balance to credits (≥ 0) and records an `external_update` entry with the difference.',
      params: UserIdParams,
      body: ExternalCredits,
      response: { 200: CreditBalance, ...errorResponses([...bodyErrors, 404], notFound) }
    }
  }, async (request, reply) => await answerOnce(request, reply, 200, credits.setExternal(request.params.userId, request.body.credits)))

  app.get('/api/credits/:userId/history', {
    schema: {
      tags,
      summary: 'Credit history, newest first',
      description: 'Every change of the balance: kind (add, deduct, reset, external_update, daily_grant), delta, balance_after. The balance always equals the sum of the deltas.',
      params: UserIdParams,
      querystring: PageQuery,
      response: { 200: CreditHistoryPage, ...errorResponses([400, 404], notFound) }
    }
  }, async (request) => await credits.history(request.params.userId, request.query))
}

export default creditsRoutes
