import { readdirSync } from 'node:fs'
import type pg from 'pg'
import { checks } from './checks.js'
import { migratePostgres } from './postgres/migrate.js'
import { migrationsDir } from './sqlite/migrate.js'
import type { Db } from './sqlite/open.js'

/** The tables of a tally file, parents before children: each foreign key finds its row. */
export const copiedTables = [
  'point_transactions', 'point_lots', 'payer_balances', 'ledger_totals', 'point_spends', 'point_spend_draws',
  'point_adjustment_draws', 'point_holds', 'point_hold_draws', 'point_reversals', 'point_reversal_draws',
  'point_expirations', 'point_balance_history', 'users', 'credit_entries', 'daily_grants', 'daily_grant_runs',
  'events', 'alerts', 'alert_profiles', 'idempotency_keys'
] as const

// PostgreSQL's own table, made here from the events: one row per user that has any.
const ALERT_STATES = 'alert_states'

// A batch is sent when it reaches either bound, so memory stays bounded whatever the rows hold
// (an idempotency key's stored answer to a large batch is most of a MiB).
const BATCH_ROWS = 5000
const BATCH_CHARS = 4 * 1024 * 1024
// The differences a summary lists; past these it only counts them.
const LISTED_DIFFERENCES = 20

export interface CopySummary {
  /** Rows copied, per table in the order copied, alert_states (made, not copied) last. */
  rows: Record<string, number>
  /** How many rows each comparison read from the file. */
  compared: { ledgers: number, payers: number, users: number }
  /** The first differences between the file and the copy, and how many there were in all. */
  differences: string[]
  differenceCount: number
  /** What the invariant checks (db:check's) found wrong in the copy. */
  problems: string[]
  /** False when a difference or a problem was found: the copy was rolled back, the target left empty. */
  committed: boolean
}

export interface CopyOptions {
  /** Hears each step as it starts: on a large file they take a while. */
  progress?: (step: string) => void
  /** Runs in the copy's transaction before it is verified: tests break the copy here. */
  beforeVerify?: (client: pg.PoolClient) => Promise<void>
}

type Row = Record<string, unknown>

/** The schema version this tally migrates a file to: the highest in migrations/sqlite/. */
function latestVersion (): number {
  return Math.max(...readdirSync(migrationsDir).filter(name => /^\d+\.do\./.test(name)).map(name => parseInt(name, 10)))
}

/** The version postgrator recorded in the file; 0 when it never migrated it. */
function fileVersion (db: Db): number {
  const migrated = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schemaversion'").get()
  if (migrated === undefined) return 0
  return db.prepare('SELECT coalesce(max(version), 0) FROM schemaversion').pluck().get() as number
}

/** Refuses a file this copy does not know to the last table; reads nothing else. */
function checkSource (db: Db): void {
  const version = fileVersion(db)
  const latest = latestVersion()
  if (version !== latest) {
    throw new Error(`DB_PATH is at schema version ${version}, not ${latest}: run \`npm run migrate\` on it first`)
  }
  const unknown = (db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schemaversion' ORDER BY name"
  ).pluck().all() as string[]).filter(name => !(copiedTables as readonly string[]).includes(name))
  if (unknown.length > 0) throw new Error(`DB_PATH has tables db:copy does not copy: ${unknown.join(', ')}`)
}

/** Refuses a target that holds anything: a copy goes into an empty database only. */
async function checkTargetEmpty (client: pg.PoolClient): Promise<void> {
  const taken: string[] = []
  for (const table of [...copiedTables, ALERT_STATES]) {
    if ((await client.query(`SELECT 1 FROM ${table} LIMIT 1`)).rows.length > 0) taken.push(table)
  }
  if (taken.length > 0) {
    throw new Error(`the PostgreSQL database already has rows (in ${taken.join(', ')}): db:copy copies into an empty database only`)
  }
}

/**
 * Streams one table from the file into the target, its columns and ids as they are. A batch
 * travels as one JSON array that PostgreSQL reads into the table's own row type, so each value
 * gets its column's type without a list of types kept here.
 */
async function copyTable (db: Db, client: pg.PoolClient, table: string): Promise<number> {
  const columns = (db.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').pluck().all(table) as string[]).join(', ')
  const insert = `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM json_populate_recordset(NULL::${table}, $1::json)`
  let batch: string[] = []
  let chars = 0
  let rows = 0
  const send = async (): Promise<void> => {
    await client.query(insert, [`[${batch.join(',')}]`])
    rows += batch.length
    batch = []
    chars = 0
  }
  // The iterator stays open across the awaits: nothing else reads the file meanwhile.
  for (const row of db.prepare(`SELECT ${columns} FROM ${table}`).iterate()) {
    const json = JSON.stringify(row)
    batch.push(json)
    chars += json.length
    if (batch.length === BATCH_ROWS || chars >= BATCH_CHARS) await send()
  }
  if (batch.length > 0) await send()
  return rows
}

/**
 * Moves every identity sequence to just past its table's highest id, so the next row gets
 * max + 1 (1 in an empty table), as SQLite gives it.
 */
async function setSequences (client: pg.PoolClient): Promise<void> {
  const identities = (await client.query<{ table: string, column: string }>(
    "SELECT attrelid::regclass::text AS table, attname AS column FROM pg_attribute WHERE attrelid = ANY ($1::regclass[]) AND attidentity <> ''",
    [copiedTables]
  )).rows
  for (const { table, column } of identities) {
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(${column}), 0) + 1, false) FROM ${table}`, [table, column])
  }
}

/** The target's rows of `sql`, a page at a time through a cursor of the copy's transaction. */
async function * cursorRows (client: pg.PoolClient, sql: string): AsyncGenerator<Row> {
  await client.query(`DECLARE compared NO SCROLL CURSOR FOR ${sql}`)
  for (;;) {
    const { rows } = await client.query(`FETCH ${BATCH_ROWS} FROM compared`)
    if (rows.length === 0) break
    yield * rows
  }
  await client.query('CLOSE compared')
}

/** Orders keys as both engines do: numbers by value, text bytewise in UTF-8 (SQLite's BINARY, PostgreSQL's "C"). */
function compareKeys (a: Row, b: Row, keys: readonly string[]): number {
  for (const key of keys) {
    const x = a[key]
    const y = b[key]
    const order = typeof x === 'string' ? Buffer.compare(Buffer.from(x), Buffer.from(y as string)) : (x as number) - (y as number)
    if (order !== 0) return order
  }
  return 0
}

export interface Comparison {
  /** What is compared, in words. */
  what: string
  /** Engine-neutral SQL answering the key columns and `value`, ordered by the keys. */
  sql: string
  keys: readonly string[]
  value: string
  /** What a row's value is, in words. */
  name: (row: Row) => string
}

export const comparisons = {
  payers: {
    what: 'payer balances',
    sql: 'SELECT ledger_id, payer, balance FROM payer_balances ORDER BY ledger_id, payer',
    keys: ['ledger_id', 'payer'],
    value: 'balance',
    name: row => `ledger ${String(row.ledger_id)} payer ${JSON.stringify(row.payer)} balance`
  },
  ledgers: {
    what: 'ledger totals',
    sql: 'SELECT ledger_id, balance FROM ledger_totals ORDER BY ledger_id',
    keys: ['ledger_id'],
    value: 'balance',
    name: row => `ledger ${String(row.ledger_id)} total`
  },
  users: {
    what: 'user credit balances',
    sql: 'SELECT id, credits FROM users ORDER BY id',
    keys: ['id'],
    value: 'credits',
    name: row => `user ${String(row.id)} credits`
  }
} satisfies Record<string, Comparison>

/**
 * Walks the file's rows and the target's side by side in key order (both sorted alike) and
 * reports each value that differs or is on one side only. Answers how many rows the file had.
 */
export async function compareOrdered (
  file: Iterable<Row>, target: AsyncIterable<Row>, { keys, value, name }: Comparison, report: (difference: string) => void
): Promise<number> {
  const fileRows = file[Symbol.iterator]()
  const targetRows = target[Symbol.asyncIterator]()
  let a = fileRows.next()
  let b = await targetRows.next()
  let count = 0
  while (a.done !== true || b.done !== true) {
    const order = a.done === true ? 1 : b.done === true ? -1 : compareKeys(a.value, b.value, keys)
    if (order < 0) report(`${name(a.value)}: ${String(a.value[value])} in the file, no row in PostgreSQL`)
    if (order > 0) report(`${name(b.value)}: no row in the file, ${String(b.value[value])} in PostgreSQL`)
    if (order === 0 && a.value[value] !== b.value[value]) {
      report(`${name(a.value)}: ${String(a.value[value])} in the file, ${String(b.value[value])} in PostgreSQL`)
    }
    if (order <= 0) {
      count++
      a = fileRows.next()
    }
    if (order >= 0) b = await targetRows.next()
  }
  return count
}

/**
 * Copies a tally SQLite file into an empty PostgreSQL database, whose pool should come from
 * createPool (BIGINTs as numbers). The file must be at the latest schema version; it is only
 * read, in one read transaction, so it may be copied while tally serves it.
 *
 * The target is migrated first (an empty database works), then everything happens in one
 * transaction that locks every table against writers: the target is checked empty, each table
 * copied with its ids, the sequences moved past them, alert_states made from the events, and
 * the copy verified against the file: row counts, every payer's balance, every ledger's total
 * and every user's credits, then db:check's invariants. Any difference or problem rolls it all
 * back, as does any error, so the target ends either a verified copy or as empty as it began.
 */
export async function copySqliteToPostgres (db: Db, pool: pg.Pool, options: CopyOptions = {}): Promise<CopySummary> {
  const progress = options.progress ?? (() => {})
  checkSource(db)
  progress('migrating the PostgreSQL database')
  await migratePostgres(pool)
  const client = await pool.connect()
  // Heard, so that a connection breaking now fails the statement in flight, not the process.
  const onError = (): void => {}
  client.on('error', onError)
  // One snapshot of the file for the whole copy, even while tally writes to it.
  db.exec('BEGIN')
  let done = false
  try {
    await client.query('BEGIN')
    await client.query(`LOCK TABLE ${[...copiedTables, ALERT_STATES].join(', ')} IN EXCLUSIVE MODE`)
    await checkTargetEmpty(client)
    const rows: Record<string, number> = {}
    for (const table of copiedTables) {
      progress(`copying ${table}`)
      rows[table] = await copyTable(db, client, table)
    }
    progress('setting the sequences past the copied ids')
    await setSequences(client)
    rows[ALERT_STATES] = (await client.query(`INSERT INTO ${ALERT_STATES} (user_id) SELECT DISTINCT user_id FROM events`)).rowCount!
    await options.beforeVerify?.(client)

    const differences: string[] = []
    let differenceCount = 0
    const report = (difference: string): void => {
      if (++differenceCount <= LISTED_DIFFERENCES) differences.push(difference)
    }
    progress('counting the rows copied')
    for (const table of copiedTables) {
      const { count } = (await client.query<{ count: number }>(`SELECT count(*) AS count FROM ${table}`)).rows[0]!
      if (count !== rows[table]) report(`${table}: ${rows[table]} rows in the file, ${count} in PostgreSQL`)
    }
    const compared = { ledgers: 0, payers: 0, users: 0 }
    for (const [key, comparison] of Object.entries(comparisons) as Array<[keyof typeof comparisons, Comparison]>) {
      progress(`comparing the ${comparison.what}`)
      const file = db.prepare(comparison.sql).iterate() as Iterable<Row>
      compared[key] = await compareOrdered(file, cursorRows(client, comparison.sql), comparison, report)
    }
    const problems: string[] = []
    for (const { name, sql, say } of checks) {
      progress(`checking: ${name}`)
      for (const row of (await client.query(sql)).rows) problems.push(say(row))
    }

    const committed = differenceCount === 0 && problems.length === 0
    await client.query(committed ? 'COMMIT' : 'ROLLBACK')
    done = true
    return { rows, compared, differences, differenceCount, problems, committed }
  } finally {
    db.exec('COMMIT')
    client.off('error', onError)
    // After a failure the connection is closed rather than returned: ending the session rolls
    // back its transaction, whatever state the connection is in.
    client.release(!done)
  }
}

/** The summary an operator reads, `target` naming the database (never with its password). */
export function formatSummary (summary: CopySummary, source: string, target: string): string {
  const width = Math.max(...Object.keys(summary.rows).map(table => table.length))
  const lines = [summary.committed ? `copied ${source} into ${target}:` : `${source} was NOT copied: ${target} is left as it was`]
  for (const [table, rows] of Object.entries(summary.rows)) {
    lines.push(`  ${table.padEnd(width)} ${String(rows).padStart(10)}${table === ALERT_STATES ? ' (one per user with events)' : ''}`)
  }
  const { ledgers, payers, users } = summary.compared
  const compared = `compared with the file: ${payers} payer balances, ${ledgers} ledger totals, ${users} user credit balances`
  lines.push(summary.differenceCount === 0 ? `${compared}: no difference` : `${compared}: ${summary.differenceCount} difference(s)`)
  for (const difference of summary.differences) lines.push(`  ${difference}`)
  if (summary.differenceCount > summary.differences.length) lines.push(`  … and ${summary.differenceCount - summary.differences.length} more`)
  lines.push(summary.problems.length === 0 ? 'invariants (db:check): every one holds' : `invariants (db:check): ${summary.problems.length} problem(s)`)
  for (const problem of summary.problems) lines.push(`  ${problem}`)
  return lines.join('\n')
}
