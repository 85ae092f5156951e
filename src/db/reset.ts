import type { Db } from './open.js'

/**
 * Returns the file to its freshly migrated state: every table the migrations created is
 * emptied (ids then start again at 1), the migration record is kept. One transaction.
 */
export function resetDatabase (db: Db): void {
  const tables = db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schemaversion'"
  ).pluck().all() as string[]
  db.transaction(() => {
    // Tables reference each other; check the keys once, at commit, when all are empty.
    db.pragma('defer_foreign_keys = ON')
    for (const table of tables) db.exec(`DELETE FROM "${table}"`)
  }).immediate()
}
