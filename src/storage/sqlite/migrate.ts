import { fileURLToPath } from 'node:url'
import Postgrator from 'postgrator'
import type { Db } from './open.js'

// migrations/ sits three levels above both src/storage/sqlite/ and dist/storage/sqlite/.
export const migrationsDir = fileURLToPath(new URL('../../../migrations/sqlite', import.meta.url))

export interface MigrationResult {
  applied: string[]
  version: number
}

/**
 * Applies every pending migration in `dir` (migrations/ unless a test passes its own), recorded
 * in the `schemaversion` table.
 * The whole run is one IMMEDIATE transaction: two processes starting on the same file take
 * turns, and a failing migration leaves the file as it was.
 */
export async function migrate (db: Db, dir: string = migrationsDir): Promise<MigrationResult> {
  const postgrator = new Postgrator({
    migrationPattern: `${dir}/*.sql`,
    driver: 'sqlite3',
    schemaTable: 'schemaversion',
    execQuery: async (sql: string) => {
      const statement = db.prepare(sql)
      if (statement.reader) return { rows: statement.all() }
      statement.run()
      return { rows: [] }
    },
    execSqlScript: async (sql: string) => { db.exec(sql) }
  })
  db.exec('BEGIN IMMEDIATE')
  try {
    const applied = await postgrator.migrate()
    const version = await postgrator.getDatabaseVersion()
    db.exec('COMMIT')
    return { applied: applied.map(m => `${m.version}.${m.action}.${m.name}`), version }
  } catch (err) {
    db.exec('ROLLBACK')
    throw err
  }
}
