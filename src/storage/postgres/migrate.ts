import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import Postgrator from 'postgrator'
import type { MigrationResult } from '../sqlite/migrate.js'

export type { MigrationResult }

// migrations/ sits three levels above both src/storage/postgres/ and dist/storage/postgres/.
export const postgresMigrationsDir = fileURLToPath(new URL('../../../migrations/postgres', import.meta.url))

// The advisory lock every tally process takes to migrate (any fixed number: "tally" in ASCII).
const MIGRATION_LOCK = 0x74616c6c79

/**
 * Applies every pending migration in `dir` to the schema first on the connection's search_path,
 * recorded in its `schemaversion` table.
 *
 * Postgrator does not lock, so two processes starting at once on an empty database would both
 * create the tables. Each takes one advisory lock first, on one client, and so they take turns:
 * the second finds everything applied. The lock is taken before BEGIN so that the transaction's
 * view starts after the first one committed, whatever the isolation level. The whole run is one
 * transaction (DDL is transactional here): a failing migration leaves the database as it was.
 */
export async function migratePostgres (pool: pg.Pool, dir: string = postgresMigrationsDir): Promise<MigrationResult> {
  const client = await pool.connect()
  // Heard, so that a connection breaking now fails the statement in flight, not the process.
  const onError = (): void => {}
  client.on('error', onError)
  let done = false
  try {
    const [{ schema }] = (await client.query<{ schema: string | null }>('SELECT current_schema() AS schema')).rows as [{ schema: string | null }]
    if (schema === null) throw new Error('cannot migrate: no schema of the search_path exists')
    const postgrator = new Postgrator({
      migrationPattern: `${dir}/*.sql`,
      driver: 'pg',
      schemaTable: 'schemaversion',
      // So that postgrator looks for its table in this schema only, not in any schema of the
      // database that has one (it searches information_schema by table name). Not a qualified
      // schemaTable: postgrator would then run CREATE SCHEMA IF NOT EXISTS, which a role allowed
      // only into its own schema may not.
      currentSchema: schema,
      // postgrator sets search_path to currentSchema before each statement: it is that already.
      execQuery: async (sql: string) => sql.startsWith('SET search_path = ') ? { rows: [] } : await client.query(sql)
    })
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    await client.query('BEGIN')
    const applied = await postgrator.migrate()
    const version = await postgrator.getDatabaseVersion()
    await client.query('COMMIT')
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    done = true
    return { applied: applied.map(m => `${m.version}.${m.action}.${m.name}`), version }
  } finally {
    client.off('error', onError)
    // Whatever failed, the connection is closed rather than returned: ending the session rolls
    // back its transaction and frees its lock, even if the connection itself is what broke.
    client.release(!done)
  }
}
