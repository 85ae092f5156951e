import type { Db } from './open.js'

/**
 * Returns the file to its freshly migrated state: every table the migrations created is
 * emptied (ids then start again at 1), the migration record is kept. One transaction, or a
 * savepoint of the group commit's.
 */
export function resetDatabase (db: Db): void {
  const tables = db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schemaversion'"
  ).pluck().all() as string[]
  db.transaction(() => {
    // Tables reference each other: the keys are checked once all are empty. The pragma holds for
    // the connection until the outer COMMIT, so it is switched off again here: the writes after
    // a flush in its batch keep failing on their own foreign-key errors, not the whole batch.
    db.pragma('defer_foreign_keys = ON')
    try {
      for (const table of tables) db.exec(`DELETE FROM "${table}"`)
    } finally {
      db.pragma('defer_foreign_keys = OFF')
    }
  }).immediate()
}
