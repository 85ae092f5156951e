import t from 'tap'
import { build, call, post, snapshot } from '../helper.js'

const ok = { payer: 'DANNON', points: 300, timestamp: '2022-10-31T10:00:00Z' }
const MAX = Number.MAX_SAFE_INTEGER

// [what, body, code]: each is refused with 400 and changes nothing.
const badAdds: Array<[string, unknown, string]> = [
  ['payer missing', { points: 1, timestamp: ok.timestamp }, 'INVALID_REQUEST'],
  ['points missing', { payer: 'A', timestamp: ok.timestamp }, 'INVALID_REQUEST'],
  ['timestamp missing', { payer: 'A', points: 1 }, 'INVALID_REQUEST'],
  ['points as a string', { ...ok, points: '5000' }, 'INVALID_REQUEST'],
  ['payer as a number', { ...ok, payer: 5 }, 'INVALID_REQUEST'],
  ['payer null', { ...ok, payer: null }, 'INVALID_REQUEST'],
  ['timestamp as a number', { ...ok, timestamp: 1667210400 }, 'INVALID_REQUEST'],
  ['an extra field', { ...ok, note: 'x' }, 'INVALID_REQUEST'],
  ['zero points', { ...ok, points: 0 }, 'ZERO_POINTS'],
  ['a fraction', { ...ok, points: 1.5 }, 'INVALID_REQUEST'],
  ['points beyond 2^53−1', { ...ok, points: MAX + 1 }, 'INVALID_REQUEST'],
  ['points below −(2^53−1)', { ...ok, points: -MAX - 2 }, 'INVALID_REQUEST'],
  ['points as true', { ...ok, points: true }, 'INVALID_REQUEST'],
  ['an empty payer', { ...ok, payer: '' }, 'INVALID_REQUEST'],
  ['a blank payer', { ...ok, payer: '   ' }, 'INVALID_REQUEST'],
  ['a 65-character payer', { ...ok, payer: 'x'.repeat(65) }, 'INVALID_REQUEST'],
  ['a timestamp that is not one', { ...ok, timestamp: 'yesterday' }, 'INVALID_REQUEST'],
  ['a zone-less timestamp', { ...ok, timestamp: '2022-10-31T10:00:00' }, 'INVALID_REQUEST'],
  ['a date-only timestamp', { ...ok, timestamp: '2022-10-31' }, 'INVALID_REQUEST'],
  ['February 30th', { ...ok, timestamp: '2022-02-30T10:00:00Z' }, 'INVALID_REQUEST'],
  ['microseconds', { ...ok, timestamp: '2022-10-31T10:00:00.123456Z' }, 'INVALID_TIMESTAMP'],
  ['an array body', [ok], 'INVALID_REQUEST'],
  ['a null body', null, 'INVALID_REQUEST'],
  ['a JSON string body', 'DANNON', 'INVALID_REQUEST']
]

t.test('/add refuses each invalid body with a clear 400 and changes nothing', async t => {
  const app = await build(t)
  await post(app, '/add', ok)
  const before = await snapshot(app)
  for (const [what, body, code] of badAdds) {
    const res = await call(app, { method: 'POST', url: '/add', payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    t.equal(res.status, 400, what)
    t.equal(res.body.code, code, what)
    t.equal(res.body.statusCode, 400, what)
    t.equal(res.body.error, 'Bad Request', what)
    t.type(res.body.message, 'string', what)
  }
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('/add messages name the field', async t => {
  const app = await build(t)
  t.equal((await post(app, '/add', { ...ok, points: '5000' })).body.message, 'body/points must be integer')
  t.equal((await post(app, '/add', { ...ok, extra: 1 })).body.message, 'body must NOT have additional properties')
  t.equal((await post(app, '/add', { ...ok, points: 0 })).body.message, 'points must not be zero')
  t.equal((await post(app, '/add', { ...ok, timestamp: '2022-10-31T10:00:00.1234Z' })).body.message,
    'timestamp must have at most millisecond precision')
})

t.test('/spend refuses each invalid body and query', async t => {
  const app = await build(t)
  await post(app, '/add', ok)
  const before = await snapshot(app)
  const cases: Array<[string, string, unknown]> = [
    ['zero', '/spend', { points: 0 }],
    ['negative', '/spend', { points: -5 }],
    ['a string', '/spend', { points: '5' }],
    ['a fraction', '/spend', { points: 1.5 }],
    ['missing', '/spend', {}],
    ['an extra field', '/spend', { points: 5, payer: 'DANNON' }],
    ['beyond 2^53−1', '/spend', { points: MAX + 1 }],
    ['dry_run not a boolean', '/spend?dry_run=maybe', { points: 5 }],
    ['an unknown query parameter', '/spend?dryrun=true', { points: 5 }]
  ]
  for (const [what, url, body] of cases) {
    const res = await post(app, url, body)
    t.equal(res.status, 400, what)
    t.equal(res.body.code, 'INVALID_REQUEST', what)
  }
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('bodies that are not JSON objects', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  const cases: Array<[string, Record<string, string> | undefined, string | undefined, number, string]> = [
    ['empty body with a JSON content type', { 'content-type': 'application/json' }, '', 400, 'EMPTY_BODY'],
    ['no body at all', undefined, undefined, 400, 'INVALID_REQUEST'],
    ['malformed JSON', { 'content-type': 'application/json' }, '{"points": 5', 400, 'INVALID_JSON'],
    ['text/plain', { 'content-type': 'text/plain' }, '{"points": 5}', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['form encoded', { 'content-type': 'application/x-www-form-urlencoded' }, 'points=5', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['over 1 MiB', { 'content-type': 'application/json' }, JSON.stringify({ points: 5, pad: 'x'.repeat(1024 * 1024) }), 413, 'BODY_TOO_LARGE']
  ]
  for (const [what, headers, payload, status, code] of cases) {
    for (const url of ['/add', '/spend']) {
      const res = await call(app, { method: 'POST', url, ...(headers && { headers }), ...(payload !== undefined && { payload }) })
      t.equal(res.status, status, `${url}: ${what}`)
      t.equal(res.body.code, code, `${url}: ${what}`)
      t.strictSame(Object.keys(res.body).sort(), ['code', 'error', 'message', 'statusCode'], `${url}: ${what}: the error shape`)
    }
  }
  t.strictSame(await snapshot(app), before, 'nothing changed')
})

t.test('balances may not pass 2^53−1', async t => {
  const app = await build(t)
  t.equal((await post(app, '/add', { ...ok, points: MAX })).status, 200)
  const before = await snapshot(app)
  const samePayer = await post(app, '/add', { ...ok, points: 1 })
  t.equal(samePayer.status, 400)
  t.equal(samePayer.body.code, 'BALANCE_TOO_LARGE')
  t.equal(samePayer.body.message, 'The resulting balance of payer DANNON would exceed 9007199254740991')
  const ledger = await post(app, '/add', { ...ok, payer: 'OTHER', points: 1 })
  t.equal(ledger.body.code, 'BALANCE_TOO_LARGE')
  t.equal(ledger.body.message, 'The resulting balance of the ledger would exceed 9007199254740991')
  t.strictSame(await snapshot(app), before, 'nothing changed')
  t.strictSame((await post(app, '/spend', { points: MAX })).body, [{ payer: 'DANNON', points: -MAX }], 'the largest spend works')
})

t.test('payers are kept exactly as given; timestamps are stored as UTC', async t => {
  const app = await build(t)
  const odd = ' Ünïcødé 💰 payer '
  const res = await post(app, '/add', { payer: odd, points: 5, timestamp: '2022-10-31T12:00:00.5+02:00' })
  t.strictSame(res.body, { id: 1, payer: odd, points: 5, timestamp: '2022-10-31T10:00:00.500Z' })
  await post(app, '/add', { payer: 'dannon', points: 1, timestamp: '2022-10-31 09:00:00z' })
  await post(app, '/add', { payer: '10', points: 2, timestamp: '2022-10-31T10:00:00-00:30' })
  // Byte order of payer names, integer-like names included (a JS object would move "10" first).
  t.equal((await app.inject('/balance')).body, '{" Ünïcødé 💰 payer ":5,"10":2,"dannon":1}')
  t.strictSame((await post(app, '/spend', { points: 8 })).body,
    [{ payer: 'dannon', points: -1 }, { payer: odd, points: -5 }, { payer: '10', points: -2 }], 'oldest UTC instant first')
})
