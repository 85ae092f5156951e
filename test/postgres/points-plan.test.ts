import type pg from 'pg'
import t from 'tap'
import { pgPointsSql } from '../../src/points/postgres.js'
import { pgEngine } from './points-engines.js'

// Cost follows the work, not the history: on tables with enough rows that a scan of one would
// show, every statement of PgPoints reaches its rows through an index, both as first planned
// for the values at hand and as the generic plan PostgreSQL may settle on for a statement
// prepared once per connection.

const MAX = Number.MAX_SAFE_INTEGER
const CREATED = '2024-01-01T00:00:00.000Z'

// A history: ledger 0 has 20 000 lots over three payers, nearly all spent, and ledgers 1..2000
// have 60 000 more; 10 000 negative adds in ledger 0 and 10 000 in the others, 40 000 spends of
// two draws each, a tenth of them ledger 0's, and 2 000 users.
const HISTORY = [
  `INSERT INTO users (id, email, email_key, name, created_at, credits_updated_at)
     SELECT i, 'u' || i || '@example.com', 'u' || i || '@example.com', 'User', '${CREATED}', '${CREATED}' FROM generate_series(1, 2000) AS i`,
  `INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at)
     SELECT i, CASE WHEN i <= 20000 THEN 0 ELSE 1 + i % 2000 END, 'P' || i % 3, 10,
       to_char(timestamp '2020-01-01' + i * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), '${CREATED}'
     FROM generate_series(1, 80000) AS i`,
  `INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining, adjusted)
     SELECT id, ledger_id, payer, ts, points, CASE WHEN id % 20 = 0 THEN 10 ELSE 0 END, CASE WHEN id % 40 = 1 THEN 1 ELSE 0 END
     FROM point_transactions`,
  // Negative adds draw from the lots with adjusted = 1 (every 40th), of their own ledger.
  `INSERT INTO point_transactions (id, ledger_id, payer, points, ts, created_at)
     SELECT 100000 + i, l.ledger_id, l.payer, -1, '2021-01-01T00:00:00.000Z', '${CREATED}'
     FROM generate_series(1, 20000) AS i JOIN point_lots AS l ON l.transaction_id = (i % 2000) * 40 + 1`,
  `INSERT INTO point_adjustment_draws (adjustment_id, lot_id, points, cause_id, created_at)
     SELECT 100000 + i, (i % 2000) * 40 + 1, 1, 100000 + i, '${CREATED}' FROM generate_series(1, 20000) AS i`,
  `INSERT INTO point_spends (id, ledger_id, points, created_at)
     SELECT i, CASE WHEN i <= 4000 THEN 0 ELSE 1 + i % 2000 END, 20, '${CREATED}' FROM generate_series(1, 40000) AS i`,
  `INSERT INTO point_spend_draws (spend_id, seq, lot_id, points)
     SELECT i, s, (i * 2 + s) % 80000 + 1, 10 FROM generate_series(1, 40000) AS i, generate_series(1, 2) AS s`,
  `INSERT INTO payer_balances (ledger_id, payer, balance)
     SELECT l, 'P' || p, 100 FROM generate_series(0, 2000) AS l, generate_series(0, 2) AS p`,
  'INSERT INTO ledger_totals (ledger_id, balance) SELECT l, 300 FROM generate_series(0, 2000) AS l',
  // Issue 13: a third of the lots expire (in 2025, after CREATED; a few spendable ones in 2023,
  // due), 20 000 holds of every status with two draws each, 10 000 reversals, 20 000
  // expirations, and ten history rows for each payer of each ledger.
  `UPDATE point_lots SET expires_at = to_char(CASE WHEN transaction_id % 120 = 0 THEN timestamp '2023-01-01' ELSE timestamp '2025-01-01' END
     + transaction_id * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') WHERE transaction_id % 3 = 0`,
  `INSERT INTO point_holds (id, ledger_id, points, status, expires_at, created_at, resolved_at, captured, spend_id)
     SELECT i, CASE WHEN i <= 2000 THEN 0 ELSE 1 + i % 2000 END, 10, (ARRAY['pending', 'captured', 'voided', 'expired'])[1 + i % 4],
       CASE WHEN i % 8 = 0 THEN '2025-01-01T00:00:00.000Z' WHEN i % 8 = 4 THEN '2023-01-01T00:00:00.000Z' END, '${CREATED}',
       CASE WHEN i % 4 <> 0 THEN '${CREATED}' END, CASE WHEN i % 4 = 1 THEN 10 END, CASE WHEN i % 4 = 1 THEN i END
     FROM generate_series(1, 20000) AS i`,
  `INSERT INTO point_hold_draws (hold_id, seq, lot_id, points)
     SELECT i, s, (i * 2 + s) % 80000 + 1, 5 FROM generate_series(1, 20000) AS i, generate_series(1, 2) AS s`,
  `INSERT INTO point_reversals (id, ledger_id, spend_id, points, created_at)
     SELECT i, CASE WHEN i * 4 <= 4000 THEN 0 ELSE 1 + i * 4 % 2000 END, i * 4, 5, '${CREATED}' FROM generate_series(1, 10000) AS i`,
  `INSERT INTO point_reversal_draws (reversal_id, seq, lot_id, points)
     SELECT i, 1, (i * 8 + 1) % 80000 + 1, 5 FROM generate_series(1, 10000) AS i`,
  `INSERT INTO point_expirations (id, ledger_id, lot_id, payer, points, expired_at, created_at)
     SELECT i, l.ledger_id, l.transaction_id, l.payer, 1, '2023-06-01T00:00:00.000Z', '${CREATED}'
     FROM generate_series(1, 20000) AS i JOIN point_lots AS l ON l.transaction_id = i * 4`,
  `INSERT INTO point_balance_history (ledger_id, payer, at, balance)
     SELECT l, 'P' || p, to_char(timestamp '2023-01-01' + h * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 100
     FROM generate_series(0, 2000) AS l, generate_series(0, 2) AS p, generate_series(1, 10) AS h`,
  'ANALYZE'
]

const BEFORE = '2024-06-01T00:00:00.000Z'
// applyChanges's values ($1..$18): one lot, one payer, one history row and one expiration.
const changes = [0, [20], [-10], [10], [0], [0], ['P0'], [-10], [10], -10, CREATED, ['P0'], [20], ['P0'], [1], [CREATED], [null], [null]]

// Values for each statement, like those a request binds.
const values: Record<keyof typeof pgPointsSql, unknown[] | undefined> = {
  userExists: [5],
  lockTotalForAdd: [0],
  lockTotalForSpend: [0],
  total: [0],
  lockTransactions: undefined, // LOCK TABLE has no plan
  payers: [0, ['P0', 'P1']],
  insertAdds: [0, ['P0', 'P1'], [5, 6], ['2022-01-01T00:00:00.000Z', '2022-01-01T00:00:00.000Z'], [null, BEFORE], CREATED],
  lotsPage: [0, '', 0],
  lotsPageByExpiry: [0, '', '', 0],
  payerLotsPage: [0, 'P1', '', 0],
  sharesPage: [0, 'P1', '2020-01-01T00:00:00.000Z', '~', 0, CREATED],
  adjust: [[100001], [41], [1], 100001, CREATED],
  recordSpend: [0, 10, CREATED, [20], [10], ['P0'], [-10]],
  moveBalances: [0, ['P0', 'P1'], [5, -5], 0, CREATED],
  balances: [0],
  transactionsPage: [0, MAX, 11],
  adjustmentDrawsOf: [[100001, 100002]],
  spendsPage: [0, MAX, 11],
  spendDrawsOf: [[1, 2]],
  due: [0, CREATED],
  isDue: [0, CREATED],
  dueLedgers: [CREATED, 100],
  settleChanges: [...changes.slice(0, 10), [4], ['2023-01-01T00:00:00.000Z']],
  recordSettled: [0, CREATED, [20], ['P0'], [1], [CREATED], [4], [null], ['P0'], [CREATED], [90]],
  insertHold: [...changes, 10, null, [20], [10]],
  captureHold: [...changes, 8, 10, [20], [10]],
  voidHold: [...changes, 8],
  insertReversal: [...changes, 4, 5, [20], [5]],
  hold: [0, 8],
  holdsPage: [0, MAX, 11],
  holdsPageByStatus: [0, 'pending', MAX, 11],
  holdDrawsOf: [[1, 2]],
  spend: [0, 4],
  spendExists: [0, 4],
  reversalsPage: [4, MAX, 11],
  reversalDrawsOf: [[1, 2]],
  expirationsPage: [0, MAX, 11],
  payerDetails: [0],
  balancesAt: [0, BEFORE]
}

// The index each read of a ledger's rows must go through, in order (no sort of what it found).
const ordered: Partial<Record<keyof typeof pgPointsSql, string>> = {
  lotsPage: 'point_lots_spendable',
  lotsPageByExpiry: 'point_lots_spendable_expiry',
  payerLotsPage: 'point_lots_payer_spendable',
  transactionsPage: 'point_transactions_ledger',
  spendsPage: 'point_spends_ledger',
  holdsPage: 'point_holds_ledger',
  holdsPageByStatus: 'point_holds_ledger_status',
  reversalsPage: 'point_reversals_spend',
  expirationsPage: 'point_expirations_ledger'
}
// And the index of the others that read many rows.
const indexed: Partial<Record<keyof typeof pgPointsSql, string>> = {
  sharesPage: 'point_lots_adjusted',
  // All of the ledger's payers: no LIMIT to stop at, so no order to keep.
  balances: 'payer_balances_pkey',
  adjustmentDrawsOf: 'point_adjustment_draws_adjustment',
  spendDrawsOf: 'point_spend_draws_pkey',
  payers: 'point_lots_adjusted',
  hold: 'point_hold_draws_pkey',
  holdDrawsOf: 'point_hold_draws_pkey',
  spend: 'point_spend_draws_pkey',
  reversalDrawsOf: 'point_reversal_draws_pkey',
  payerDetails: 'point_lots_payer_expiring',
  balancesAt: 'point_balance_history_pkey'
}

interface PlanNode { 'Node Type': string, 'Relation Name'?: string, 'Index Name'?: string, Plans?: PlanNode[] }

function nodesOf (plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)]
}

function literal (client: pg.PoolClient, value: unknown): string {
  if (Array.isArray(value)) return client.escapeLiteral(`{${value.map(v => JSON.stringify(v)).join(',')}}`)
  return typeof value === 'string' ? client.escapeLiteral(value) : String(value)
}

async function planOf (client: pg.PoolClient, text: string, params: unknown[]): Promise<PlanNode[]> {
  const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${text}`, params)
  return nodesOf((rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan)
}

t.test('every statement of PgPoints reads through an index on a ledger with 20 000 lots', async t => {
  const { pool } = await pgEngine(t, () => new Date(CREATED))
  const client = await pool.connect()
  t.teardown(() => client.release())
  // The history's foreign keys hold by construction: checking them row by row would take PGlite
  // most of this test.
  await client.query('BEGIN')
  await client.query('SET LOCAL session_replication_role = replica')
  for (const statement of HISTORY) await client.query(statement)
  await client.query('COMMIT')
  await client.query('BEGIN')
  for (const [name, text] of Object.entries(pgPointsSql) as Array<[keyof typeof pgPointsSql, string]>) {
    const params = values[name]
    if (params === undefined) continue
    await client.query(`PREPARE generic_plan AS ${text}`)
    const plans = {
      custom: await planOf(client, text, params),
      generic: await (async () => {
        await client.query('SET LOCAL plan_cache_mode = force_generic_plan')
        // EXECUTE takes no bound parameters: its arguments are written out.
        const plan = await planOf(client, `EXECUTE generic_plan (${params.map(value => literal(client, value)).join(', ')})`, [])
        await client.query('SET LOCAL plan_cache_mode = auto')
        return plan
      })()
    }
    await client.query('DEALLOCATE generic_plan')
    for (const [kind, nodes] of Object.entries(plans)) {
      const scans = nodes.filter(node => node['Node Type'] === 'Seq Scan').map(node => node['Relation Name'])
      t.strictSame(scans, [], `${name} (${kind} plan): no table read whole`)
      const indexes = nodes.map(node => node['Index Name']).filter(index => index !== undefined)
      const index = ordered[name] ?? indexed[name]
      if (index !== undefined) t.ok(indexes.includes(index), `${name} (${kind} plan) uses ${index}: ${indexes.join(', ')}`)
      if (ordered[name] !== undefined) {
        t.notOk(nodes.some(node => node['Node Type'] === 'Sort' || node['Node Type'].startsWith('Bitmap')),
          `${name} (${kind} plan) reads in index order and stops at its LIMIT: ${nodes.map(node => node['Node Type']).join(' > ')}`)
      }
    }
  }
  await client.query('ROLLBACK')
})
