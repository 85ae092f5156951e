import { join } from 'node:path'
import t from 'tap'
import { checkInvariants } from '../../src/storage/sqlite/check.js'
import { openDatabase } from '../../src/storage/sqlite/open.js'
import { build, call, canonicalAdds, tempDir } from '../helper.js'
import { runCommand } from '../process.js'

// A file with every kind of row: users, credits, lots, spends, negative adds and their moves.
async function populated (t: Parameters<typeof build>[0]): Promise<string> {
  const dbPath = join(tempDir(t), 'app.db')
  const app = await build(t, { dbPath })
  await call(app, { method: 'POST', url: '/users', payload: { email: 'ada@example.com', name: 'Ada' } })
  await call(app, { method: 'POST', url: '/api/credits/1/add', payload: { amount: 10 } })
  for (const add of [canonicalAdds[4], canonicalAdds[1], canonicalAdds[2], canonicalAdds[3], canonicalAdds[0]]) {
    await call(app, { method: 'POST', url: '/add', payload: add })
  }
  await call(app, { method: 'POST', url: '/spend', payload: { points: 5000 } })
  await app.close()
  return dbPath
}

t.test('a consistent file has no problems', async t => {
  const db = openDatabase(await populated(t))
  t.teardown(() => db.close())
  t.strictSame(checkInvariants(db), [])
})

t.test('each broken invariant is named', async t => {
  const db = openDatabase(await populated(t))
  t.teardown(() => db.close())
  db.pragma('foreign_keys = OFF')
  db.exec(`
    UPDATE payer_balances SET balance = balance + 1 WHERE payer = 'UNILEVER';
    INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (7, 'GHOST', 5, '2022-01-01T00:00:00.000Z', 'x');
    INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining) VALUES (last_insert_rowid(), 7, 'GHOST', '2022-01-01T00:00:00.000Z', 5, 5);
    INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (0, 'DANNON', 9, '2022-01-01T00:00:00.000Z', 'x');
    INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES (0, 'DANNON', -9, '2022-01-01T00:00:00.000Z', 'x');
    DELETE FROM point_spend_draws WHERE seq = 3;
    UPDATE point_lots SET adjusted = 0, remaining = remaining + 200 WHERE transaction_id = 5;
    UPDATE users SET credits = 11 WHERE id = 1;
    INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES (99, 'add', 1, 1, 'x');
    INSERT INTO payer_balances (ledger_id, payer, balance) VALUES (8, 'LOST', 3);
  `)
  const problems = checkInvariants(db)
  t.strictSame(problems.sort(), [
    'add 7: positive but no lot',
    'credit_entries row 2: refers to a missing users row',
    'ledger 0 payer DANNON: balance 1000 but its lots hold 1200',
    'ledger 0 payer UNILEVER: balance 1 but its lots hold 0',
    'ledger 0 payer UNILEVER: balance 1 but its history ends at 0',
    'ledger 0: total 6300 but its payers hold 6301',
    'ledger 8 payer LOST: balance 3 but its lots hold 0',
    'ledger 8 payer LOST: balance 3 but its history ends at nothing',
    'ledger 8: total 0 but its payers hold 3',
    'ledger 7 payer GHOST: lots but no balance row',
    'lot 4: 4700 spent but spends drew 0',
    'lot 5: 0 taken by negative adds but their draws say 200',
    'negative add 8 of -9 draws 0',
    'spend 1 of 5000 drew 300',
    'user 1: 11 credits but the history sums to 10 (last balance_after 10)'
  ].sort())
})

t.test('rows the CHECK constraints forbid are named too (a file written with checks ignored)', async t => {
  const db = openDatabase(await populated(t))
  t.teardown(() => db.close())
  db.pragma('ignore_check_constraints = ON')
  db.exec(`
    UPDATE payer_balances SET balance = -5 WHERE payer = 'UNILEVER';
    UPDATE point_lots SET remaining = -5 WHERE transaction_id = 2;
  `)
  const problems = checkInvariants(db)
  t.ok(problems.includes('ledger 0 payer UNILEVER: negative balance -5'))
  t.ok(problems.includes('lot 2: points 200, remaining -5, adjusted 0, held 0, expired 0, restored 0 out of bounds'))
})

t.test('what the SQLite integrity check reports is passed on', async t => {
  const db = openDatabase(await populated(t))
  t.teardown(() => db.close())
  // Fault injection: this handle's integrity_check reports damage; everything else is the real file.
  const damaged = new Proxy(db, {
    get: (target, property) => property === 'pragma'
      ? (source: string, options?: object) => source === 'integrity_check' ? 'row 3 missing from index point_transactions_ledger' : target.pragma(source, options)
      : Reflect.get(target, property, target)
  })
  t.strictSame(checkInvariants(damaged), ['integrity_check: row 3 missing from index point_transactions_ledger'])
})

t.test('npm run db:check: exit 0 on a sound file, 1 and the problems on a broken one', async t => {
  const dbPath = await populated(t)
  const good = await runCommand('db-check', { DB_PATH: dbPath })
  t.equal(good.code, 0)
  t.equal(good.stdout, `${dbPath}: every invariant holds\n`)
  t.match(good.stderr, new RegExp(`^checking ${dbPath}\\n {2}SQLite integrity and foreign keys…\\n {2}balances match their lots…\\n`))
  t.equal(good.stderr.split('\n').filter(line => line.endsWith('…')).length, 17, 'each check shows as it runs')
  const db = openDatabase(dbPath)
  db.prepare("UPDATE payer_balances SET balance = 7 WHERE payer = 'DANNON'").run()
  db.close()
  const bad = await runCommand('db-check', { DB_PATH: dbPath })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /tally: Error: 3 problem\(s\):\n/)
  for (const problem of ['ledger 0 payer DANNON: balance 7 but its lots hold 1000', 'ledger 0: total 6300 but its payers hold 5307', 'ledger 0 payer DANNON: balance 7 but its history ends at 1000']) {
    t.ok(bad.stderr.includes(`\n  ${problem}\n`), problem)
  }
  const missing = await runCommand('db-check', { DB_PATH: join(tempDir(t), 'nope.db') })
  t.equal(missing.code, 1)
  t.match(missing.stderr, /does not exist/)
})
