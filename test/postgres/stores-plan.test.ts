import type pg from 'pg'
import t from 'tap'
import { pgAlertsSql } from '../../src/alerts/postgres.js'
import { pgCreditsSql } from '../../src/credits/postgres.js'
import { pgIdempotencySql } from '../../src/idempotency/postgres.js'
import { migratePostgres } from '../../src/storage/postgres/migrate.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { pgUsersSql } from '../../src/users/postgres.js'
import { freshPostgres } from '../postgres.js'

// Cost follows the work, not the history: on tables with enough rows (and their statistics),
// every read of the stores walks an index, never the whole table. Each statement is planned
// as the stores run it, a prepared statement with parameters, both ways PostgreSQL may plan
// one: for the values given, where it must walk the index named, and generic (what it may cache
// after five executions), where it must not read a table whole. Generic plans with a LIMIT
// parameter are costed high, so PostgreSQL keeps planning these for their values in practice.

const USERS = 2000
const EVENTS_PER_USER = 20
const MAX = Number.MAX_SAFE_INTEGER

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Conflict Arbiter Indexes'?: string[]
  Plans?: PlanNode[]
}

/** Every node of a plan, flattened. */
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)]

const literal = (value: unknown): string => typeof value === 'number' ? String(value) : `'${String(value).replaceAll("'", "''")}'`

async function plans (client: pg.PoolClient, text: string, values: unknown[]): Promise<Record<'custom' | 'generic', PlanNode[]>> {
  await client.query('DEALLOCATE ALL')
  await client.query(`PREPARE planned AS ${text}`)
  const explain = async (mode: string): Promise<PlanNode[]> => {
    await client.query(`SET plan_cache_mode = ${mode}`)
    const { rows } = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE planned (${values.map(literal).join(', ')})`)
    return nodes((rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan)
  }
  return { custom: await explain('force_custom_plan'), generic: await explain('force_generic_plan') }
}

const stores = { users: pgUsersSql, credits: pgCreditsSql, alerts: pgAlertsSql, idempotency: pgIdempotencySql }

// What reads no index on purpose.
const unplanned: Record<string, string> = {
  'credits.lockGrants': 'an advisory lock: no table',
  'credits.grantAll': 'the daily grant reads every user by design, once a day',
  'credits.insertRun': 'one row inserted, nothing read',
  'alerts.insertEvent': 'rows inserted, nothing read'
}

t.test('every read of the users, credits, alerts and idempotency stores uses an index', async t => {
  const { url } = await freshPostgres(t)
  const pool = createPool({ url, size: 1 })
  t.teardown(() => pool.end())
  await migratePostgres(pool)
  const now = "'2024-03-01T00:00:00.000Z'"
  await pool.query(`
    INSERT INTO users (email, email_key, name, credits, created_at, credits_updated_at)
      SELECT 'u' || i || '@example.com', 'u' || i || '@example.com', 'U', 10, ${now}, ${now} FROM generate_series(1, ${USERS}) AS i;
    INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at)
      SELECT u, 'add', 1, n, ${now} FROM generate_series(1, ${USERS}) AS u, generate_series(1, 10) AS n;
    INSERT INTO daily_grant_runs (day, trigger, users_credited, ran_at)
      SELECT to_char(date '2020-01-01' + i, 'YYYY-MM-DD'), 'schedule', ${USERS}, ${now} FROM generate_series(1, 1000) AS i;
    INSERT INTO events (user_id, type, amount, time, created_at)
      SELECT u, CASE WHEN n % 3 = 0 THEN 'withdraw' ELSE 'deposit' END, 100 * n, n * 10, ${now}
      FROM generate_series(1, ${EVENTS_PER_USER}) AS n, generate_series(1, ${USERS}) AS u;
    INSERT INTO alerts (event_id, user_id, code, details, created_at)
      SELECT id, user_id, CASE WHEN id % 1000 = 0 THEN 1100 ELSE (ARRAY[30, 123, 300, 500])[1 + (id / 2) % 4] END, '{}', ${now}
      FROM events WHERE id % 2 = 0;
    INSERT INTO alert_profiles (user_id, risk, updated_at) SELECT i, 'high', ${now} FROM generate_series(1, ${USERS}, 2) AS i;
    INSERT INTO alert_states (user_id) SELECT i FROM generate_series(1, ${USERS}) AS i;
    INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at)
      SELECT 'k' || i, 'f', 200, '{}', to_char(timestamp '2024-01-01' + i * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM generate_series(1, 20000) AS i;
    ANALYZE`)
  const user = 1234
  const eventId = (await pool.query('SELECT max(id) AS id FROM events WHERE user_id = $1', [user])).rows[0].id as number
  const statements: Array<[string, string, unknown[], string]> = [
    ['users: a page', pgUsersSql.page, [MAX, 51], 'users_pkey'],
    ['users: by id', pgUsersSql.byId, [user], 'users_pkey'],
    ['users: create (email taken?)', pgUsersSql.insert, ['u9@example.com', 'u9@example.com', 'U', 'now'], 'users_email_key_key'],
    ['credits: the balance', pgCreditsSql.balance, [user], 'users_pkey'],
    ['credits: lock the balance', pgCreditsSql.lockBalance, [user], 'users_pkey'],
    ['credits: apply a change', pgCreditsSql.applyChange, [user, 'add', 5, 5, 'now'], 'users_pkey'],
    ['credits: credit the granted', pgCreditsSql.creditGrants, ['{1,2,3}', 5, 'now'], 'users_pkey'],
    ['credits: a history page', pgCreditsSql.history, [user, MAX, 51], 'credit_entries_user'],
    ['credits: a grant ran that day?', pgCreditsSql.ranOn, ['2022-06-01'], 'daily_grant_runs_day'],
    ['alerts: lock the user', pgAlertsSql.lockUser, [user], 'alert_states_pkey'],
    ['alerts: the profile', pgAlertsSql.profile, [user], 'alert_profiles_pkey'],
    ['alerts: set the profile', pgAlertsSql.upsertProfile, [user, 'low', '{}', 'now'], 'alert_profiles_pkey'],
    ['alerts: the latest events', pgAlertsSql.latestEvents, [user, 2], 'events_user_time'],
    ['alerts: the latest deposits', pgAlertsSql.latestDeposits, [user, 2], 'events_user_deposits'],
    ['alerts: the deposit window', pgAlertsSql.depositWindow, [user, 170], 'events_user_deposits'],
    ['alerts: the velocity window', pgAlertsSql.velocityWindow, [user, 140], 'events_user_time'],
    ['alerts: the newest events page', pgAlertsSql.eventsPage, [user, MAX, 51], 'events_user_time'],
    ['alerts: an events page at a cursor', pgAlertsSql.eventsPage, [user, eventId - 5, 51], 'events_user_time'],
    ['alerts: the newest alerts', pgAlertsSql.alertsPage, [MAX, 51], 'alerts_pkey'],
    ['alerts: a user\'s alerts', pgAlertsSql.alertsOfUser, [user, MAX, 51], 'alerts_user'],
    // A common code is found soonest walking every alert newest first; a rare one through its own index.
    ['alerts: the alerts of a common code', pgAlertsSql.alertsWithCode, [123, MAX, 51], 'alerts_pkey'],
    ['alerts: the alerts of a rare code', pgAlertsSql.alertsWithCode, [1100, MAX, 51], 'alerts_code'],
    ['alerts: a user\'s alerts of a code', pgAlertsSql.alertsOfUserWithCode, [user, 123, MAX, 51], 'alerts_user'],
    ['idempotency: claim a key', pgIdempotencySql.claim, ['k77', 'f', 'now', 'cutoff'], 'idempotency_keys_pkey'],
    ['idempotency: store the answer', pgIdempotencySql.answer, ['k77', 'f', 200, '{}', 'now'], 'idempotency_keys_pkey'],
    ['idempotency: find a key', pgIdempotencySql.find, ['k77'], 'idempotency_keys_pkey'],
    ['idempotency: purge a batch', pgIdempotencySql.purge, ['2024-01-01T01:00:00.000Z'], 'idempotency_keys_created']
  ]
  const planned = new Set(statements.map(([, text]) => text))
  const missing = Object.entries(stores).flatMap(([store, sql]) => Object.entries(sql)
    .filter(([name, text]) => !planned.has(text) && !(`${store}.${name}` in unplanned)).map(([name]) => `${store}.${name}`))
  t.strictSame(missing, [], 'every statement of the stores is planned here, or said why not in `unplanned`')
  t.strictSame(Object.keys(unplanned).filter(name => {
    const [store, key] = name.split('.') as [keyof typeof stores, string]
    return !(key in stores[store])
  }), [], 'every unplanned one is a statement')
  const big = new Set(['users', 'credit_entries', 'daily_grant_runs', 'events', 'alerts', 'alert_profiles', 'alert_states', 'idempotency_keys'])
  const client = await pool.connect()
  t.teardown(() => client.release())
  for (const [name, text, values, index] of statements) {
    const { custom, generic } = await plans(client, text, values)
    for (const [mode, plan] of Object.entries({ custom, generic })) {
      const scanned = plan.filter(node => node['Node Type'] === 'Seq Scan' && big.has(node['Relation Name'] ?? ''))
      t.strictSame(scanned.map(node => node['Relation Name']), [], `${name} (${mode} plan): no table read whole`)
    }
    const used = custom.flatMap(node => [node['Index Name'] ?? [], node['Conflict Arbiter Indexes'] ?? []].flat())
    t.ok(used.includes(index), `${name}: walks ${index}`, { plan: custom.map(node => `${node['Node Type']} ${node['Index Name'] ?? node['Relation Name'] ?? ''}`) })
  }
})
