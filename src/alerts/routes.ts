import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EventTimeRequired, InvalidAmount } from '../errors.js'
import { formatCents, toCents } from '../money.js'
import { answerOnce } from '../http/write-path.js'
import { IdempotencyHeaders, PageQuery, bodyErrors, errorResponses } from '../schemas.js'
import { UserIdParams } from '../users/schemas.js'
import { mapWork } from '../storage/work.js'
import type { AlertProfile } from './store.js'
import { tiers, type Thresholds } from './rules.js'
import { AlertPage, AlertsQuery, EventBody, EventPage, EventResult, Profile, ProfileBody } from './schemas.js'

// Thresholds cross the API with amounts as decimal strings and are kept in cents.
const amountFields = ['withdrawal_limit', 'deposit_window_limit'] as const
type ApiThresholds = { [K in keyof Thresholds]: K extends typeof amountFields[number] ? string : number }

function toApi (t: Partial<Thresholds>): Partial<ApiThresholds> {
  const api: Record<string, string | number> = { ...t }
  for (const field of amountFields) if (t[field] !== undefined) api[field] = formatCents(t[field])
  return api as Partial<ApiThresholds>
}

function profileToApi (profile: AlertProfile) {
  return { ...profile, overrides: toApi(profile.overrides), thresholds: toApi(profile.thresholds) as ApiThresholds }
}

const tierTable = (Object.keys(tiers) as Array<keyof typeof tiers>)
  .map(risk => `${risk}: ${Object.entries(toApi(tiers[risk])).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ')

const rulesDescription =
  'Stores the event and answers which alert codes it fires, by the user\'s thresholds (the medium tier unless set): ' +
  '**1100** a withdrawal over withdrawal_limit; **30** this and the previous events are consecutive_withdrawals withdrawals in a row; ' +
  '**300** on a deposit, this and the previous deposits (withdrawals between are ignored) are increasing_deposits strictly increasing amounts; ' +
  '**123** on a deposit, deposits with time in [time − deposit_window_seconds, time], this one counted, total more than deposit_window_limit; ' +
  '**500** more than velocity_count events of either type with time in [time − velocity_window_seconds, time], this one counted. ' +
  'A time before the user\'s last event is refused (EVENT_OUT_OF_ORDER); equal times are accepted. ' +
  'amount is a decimal string ("100", "42.00"); "0.00" is INVALID_AMOUNT. Send time (or t, the original spec\'s name), not both. ' +
  `Tiers: ${tierTable}.`

const alertsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { alerts } = app
  app.post('/event', {
    schema: {
      tags: ['alerts'],
      summary: 'Record a deposit or withdrawal and evaluate the alert rules',
      headers: IdempotencyHeaders,
      description: rulesDescription,
      body: EventBody,
      response: {
        200: EventResult,
        ...errorResponses(bodyErrors, { 400: ['INVALID_REQUEST', 'INVALID_AMOUNT', 'EVENT_TIME_REQUIRED', 'EVENT_OUT_OF_ORDER'] })
      }
    }
  }, async (request, reply) => {
    const { type, amount, user_id: userId, time, t } = request.body
    const when = time ?? t
    if (when === undefined || (time !== undefined && t !== undefined)) throw new EventTimeRequired()
    const cents = toCents(amount)
    if (cents === null || cents === 0) throw new InvalidAmount('must be greater than 0')
    const fired = alerts.record(userId, { type, amount: cents, time: when })
    return await answerOnce(request, reply, 200,
      mapWork(fired, alerts => ({ alert: alerts.length > 0, alert_codes: alerts.map(a => a.code), user_id: userId })))
  })

  app.get('/users/:userId/alert-profile', {
    schema: {
      tags: ['alerts'],
      summary: 'A user\'s risk tier and effective thresholds',
      description: `Any user id may have a profile; one never set is the medium tier. ${tierTable}.`,
      params: UserIdParams,
      response: { 200: Profile, ...errorResponses([400]) }
    }
  }, async (request) => profileToApi(await alerts.profile(request.params.userId)))

  app.put('/users/:userId/alert-profile', {
    schema: {
      tags: ['alerts'],
      summary: 'Set a user\'s risk tier and overrides',
      description: 'Sets the tier and replaces the overrides (omit them for none). The effective thresholds are the tier\'s with the overrides on top.',
      headers: IdempotencyHeaders,
      params: UserIdParams,
      body: ProfileBody,
      response: { 200: Profile, ...errorResponses(bodyErrors, { 400: ['INVALID_REQUEST', 'INVALID_IDEMPOTENCY_KEY'] }) }
    }
  }, async (request, reply) => {
    const overrides: Partial<Thresholds> = {}
    for (const [field, value] of Object.entries(request.body.overrides ?? {})) {
      // Amount fields passed the schema's pattern, so toCents cannot fail here.
      (overrides as Record<string, number>)[field] = typeof value === 'string' ? toCents(value)! : value
    }
    return await answerOnce(request, reply, 200, mapWork(alerts.setProfile(request.params.userId, request.body.risk, overrides), profileToApi))
  })

  app.get('/users/:userId/events', {
    schema: {
      tags: ['alerts'],
      summary: 'A user\'s events, newest first, with the codes each fired',
      description: 'Every deposit and withdrawal recorded for this user id (a user record is not required), with the alert codes it fired. Paginated with cursor and limit.',
      params: UserIdParams,
      querystring: PageQuery,
      response: { 200: EventPage, ...errorResponses([400]) }
    }
  }, async (request) => await alerts.events(request.params.userId, request.query))

  app.get('/alerts', {
    schema: {
      tags: ['alerts'],
      summary: 'Alerts, newest first, filtered by user_id and code',
      description: 'Each alert carries the figures that fired it, so a reviewer sees why without recomputing.',
      querystring: AlertsQuery,
      response: { 200: AlertPage, ...errorResponses([400]) }
    }
  }, async (request) => {
    const { user_id: userId, code, ...page } = request.query
    return await alerts.alerts({ userId, code }, page)
  })
}

export default alertsRoutes
