import t from 'tap'
import { build, call, get, post, snapshot, sql } from '../helper.js'

// Issue 10, item 4: every string tally stores is kept exactly as sent, or refused with a 400.

const ts = '2022-10-31T10:00:00Z'
const json = { 'content-type': 'application/json' }
const shape = ['code', 'error', 'message', 'statusCode']

/** A string's UTF-8 bytes, and its code points: what octet_length() and length() say of it stored. */
const bytes = (text: string): number => Buffer.byteLength(text, 'utf8')
const codePoints = (text: string): number => [...text].length

t.test('U+0000 in any stored string is refused with a 400, nothing stored', async t => {
  const app = await build(t)
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  const before = await snapshot(app)
  const cases: Array<[string, string, unknown]> = [
    ['a payer', '/add', { payer: 'DAN\u0000NON', points: 5, timestamp: ts }],
    ['a payer that is only U+0000', '/add', { payer: '\u0000', points: 5, timestamp: ts }],
    ['a payer of a user\'s ledger', '/users/1/points/add', { payer: 'DANNON\u0000', points: 5, timestamp: ts }],
    ['a user\'s name', '/users', { email: 'bob@example.com', name: 'Bob\u0000by' }],
    ['a user\'s email', '/users', { email: 'bob\u0000@example.com', name: 'Bob' }],
    ['an event amount', '/event', { type: 'deposit', amount: '5\u0000', user_id: 1, time: 1 }],
    ['an unknown field\'s name', '/add', { payer: 'DANNON', points: 5, timestamp: ts, 'x\u0000': 1 }],
    ['a string in an array', '/spend', [{ points: 1 }, ['\u0000']]]
  ]
  for (const [what, url, body] of cases) {
    const res = await post(app, url, body)
    t.equal(res.status, 400, what)
    t.equal(res.body.code, 'INVALID_REQUEST', what)
    t.match(res.body.message, /U\+0000/, `${what}: the message says why`)
    t.strictSame(Object.keys(res.body).sort(), shape, `${what}: the error shape`)
  }
  const profile = await call(app, { method: 'PUT', url: '/users/1/alert-profile', payload: { risk: 'high', overrides: { withdrawal_limit: '5\u0000' } } })
  t.equal(profile.status, 400, 'an alert threshold')
  t.equal(profile.body.code, 'INVALID_REQUEST')
  t.equal((await post(app, '/add', { payer: 'DAN\u0000NON', points: 5, timestamp: ts })).body.message,
    'body/payer must not contain U+0000 (NUL): it cannot be stored')
  t.equal((await post(app, '/add', { payer: 'DANNON', points: 5, timestamp: ts, 'x\u0000': 1 })).body.message,
    'a key of body must not contain U+0000 (NUL): it cannot be stored')
  t.strictSame(await snapshot(app), before, 'nothing stored')
})

t.test('a lone surrogate in any string is refused with a 400, nothing stored', async t => {
  const app = await build(t)
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  const before = await snapshot(app)
  // As JSON escapes, the only way to send them: the raw bytes are not UTF-8 (next test).
  const cases: Array<[string, string, string]> = [
    ['a high surrogate in a payer', '/add', `{"payer":"DAN\\ud800NON","points":5,"timestamp":"${ts}"}`],
    ['a low surrogate in a payer', '/add', `{"payer":"\\udc00","points":5,"timestamp":"${ts}"}`],
    ['a pair in the wrong order', '/add', `{"payer":"\\ude00\\ud83d","points":5,"timestamp":"${ts}"}`],
    ['a high surrogate at the end', '/users/1/points/add', `{"payer":"DANNON\\uD83D","points":5,"timestamp":"${ts}"}`],
    ['a user\'s name', '/users', '{"email":"bob@example.com","name":"Bob\\ud800"}'],
    ['a field name', '/spend', '{"points":1,"\\ud800":1}'],
    ['a nested string', '/spend', '{"points":1,"x":{"y":["ok","\\udfff"]}}']
  ]
  for (const [what, url, payload] of cases) {
    const res = await call(app, { method: 'POST', url, headers: json, payload })
    t.equal(res.status, 400, what)
    t.equal(res.body.code, 'INVALID_REQUEST', what)
    t.match(res.body.message, /lone surrogate/, `${what}: the message says why`)
    t.strictSame(Object.keys(res.body).sort(), shape, `${what}: the error shape`)
  }
  const res = await call(app, { method: 'POST', url: '/add', headers: json, payload: `{"payer":"DAN\\ud800NON","points":5,"timestamp":"${ts}"}` })
  t.equal(res.body.message, 'body/payer must not contain a lone surrogate (U+D800 to U+DFFF): it has no UTF-8 form')
  t.strictSame(await snapshot(app), before, 'nothing stored')
})

t.test('a body that is not valid UTF-8 is refused with a 400, not repaired', async t => {
  const app = await build(t)
  await post(app, '/users', { email: 'ada@example.com', name: 'Ada' })
  const before = await snapshot(app)
  const body = (payer: Buffer) => Buffer.concat([Buffer.from('{"payer":"'), payer, Buffer.from(`","points":5,"timestamp":"${ts}"}`)])
  const cases: Array<[string, string, Buffer]> = [
    ['a byte that is never UTF-8', '/add', body(Buffer.from([0x44, 0xff, 0x4e]))],
    ['a Latin-1 é', '/add', body(Buffer.from('DANNÉ', 'latin1'))],
    ['an overlong encoding of /', '/add', body(Buffer.from([0xc0, 0xaf]))],
    ['a surrogate encoded as UTF-8 (CESU-8)', '/users/1/points/add', body(Buffer.from([0xed, 0xa0, 0x80]))],
    ['a sequence cut short', '/add', body(Buffer.from([0xf0, 0x9f, 0x98]))],
    ['a code point above U+10FFFF', '/add', body(Buffer.from([0xf4, 0x90, 0x80, 0x80]))],
    ['a cut sequence at the very end', '/spend', Buffer.concat([Buffer.from('{"points":1}'), Buffer.from([0xe2, 0x82])])],
    ['outside any string', '/spend', Buffer.from([0x7b, 0xff, 0x7d])]
  ]
  for (const [what, url, payload] of cases) {
    const res = await call(app, { method: 'POST', url, headers: json, payload })
    t.equal(res.status, 400, what)
    t.equal(res.body.code, 'INVALID_REQUEST', what)
    t.equal(res.body.message, 'The body is not valid UTF-8', what)
    t.strictSame(Object.keys(res.body).sort(), shape, `${what}: the error shape`)
  }
  t.strictSame(await snapshot(app), before, 'nothing stored')
})

t.test('a body declared in another charset than UTF-8 is a 415', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  const payload = JSON.stringify({ payer: 'DANNON', points: 5, timestamp: ts })
  for (const contentType of [
    'application/json; charset=latin1',
    'application/json; charset=ISO-8859-1',
    'application/json;charset="utf-16"',
    'application/json; charset=us-ascii',
    'application/json; charset=',
    'application/json; charset=utf-8x'
  ]) {
    const res = await call(app, { method: 'POST', url: '/add', headers: { 'content-type': contentType }, payload })
    t.equal(res.status, 415, contentType)
    t.equal(res.body.code, 'UNSUPPORTED_MEDIA_TYPE', contentType)
    t.match(res.body.message, /UTF-8/, contentType)
    t.strictSame(Object.keys(res.body).sort(), shape, `${contentType}: the error shape`)
  }
  t.equal((await call(app, { method: 'POST', url: '/add', headers: { 'content-type': 'application/json; charset=latin1' }, payload })).body.message,
    'JSON bodies must be UTF-8; this one declares charset=latin1')
  t.strictSame(await snapshot(app), before, 'nothing stored')

  let points = 0
  for (const contentType of [
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=UTF-8',
    'application/json;charset="utf-8"',
    'Application/JSON; Charset="UTF-8"',
    'application/json; charset=utf8',
    'application/json; foo=bar; charset=utf-8'
  ]) {
    const res = await call(app, { method: 'POST', url: '/add', headers: { 'content-type': contentType }, payload })
    t.equal(res.status, 200, `${contentType} is accepted`)
    points += 5
  }
  t.strictSame((await get(app, '/balance')).body, { DANNON: points })
})

t.test('empty, malformed, oversize and __proto__ bodies are answered as before', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  const cases: Array<[string, string | Buffer, number, string | undefined]> = [
    ['empty', '', 400, 'EMPTY_BODY'],
    ['malformed', '{"points": 5', 400, 'INVALID_JSON'],
    ['only a byte-order mark', '\ufeff', 400, 'INVALID_JSON'],
    ['over 1 MiB', JSON.stringify({ points: 5, pad: 'x'.repeat(1024 * 1024) }), 413, 'BODY_TOO_LARGE'],
    // Another change words this refusal; what stays is that it is refused.
    ['a __proto__ key', '{"points": 5, "__proto__": {"x": 1}}', 400, undefined],
    ['a constructor.prototype key', '{"points": 5, "constructor": {"prototype": {"x": 1}}}', 400, undefined]
  ]
  for (const [what, payload, status, code] of cases) {
    const res = await call(app, { method: 'POST', url: '/spend', headers: json, payload })
    t.equal(res.status, status, what)
    if (code !== undefined) t.equal(res.body.code, code, what)
    t.strictSame(Object.keys(res.body).sort(), shape, `${what}: the error shape`)
  }
  t.strictSame(await snapshot(app), before, 'nothing stored')
  // A byte-order mark before the JSON is allowed, as before.
  const res = await call(app, { method: 'POST', url: '/add', headers: json, payload: `\ufeff${JSON.stringify({ payer: 'DANNON', points: 5, timestamp: ts })}` })
  t.equal(res.status, 200, 'a byte-order mark before the JSON')
})

// Strings that are valid and awkward: each must come back exactly, in the API and the database.
const awkward = [
  '😀'.repeat(64), // 64 code points, 128 UTF-16 units, 256 bytes: at the limit
  '👩‍👩‍👧‍👦 family', // a ZWJ sequence
  'e\u0301', // e and a combining acute: not normalised to é
  '\u00e9', // é precomposed: a different payer from the one above
  '\ufeffBOM', // a byte-order mark inside a string
  '\uffff\ufffe', // noncharacters are still characters
  '\u0001\u001f\u007f\u0085', // control characters other than NUL
  'a\u2028b\u2029', // line and paragraph separators
  'عربي ‮RTL', // right-to-left text and an override
  '\\u0000', // the six characters backslash, u, 0, 0, 0, 0: not a NUL
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{10FFFF}', // astral characters, the last code point
  ' padded  ' // spaces kept
]

t.test('every valid string round-trips byte for byte: API, table and view', async t => {
  const app = await build(t)
  for (const [i, payer] of awkward.entries()) {
    const res = await post(app, '/add', { payer, points: i + 1, timestamp: ts })
    t.equal(res.status, 200, `awkward[${i}]`)
    t.equal(res.body.payer, payer, `awkward[${i}]: the answer`)
  }
  const balance = (await get(app, '/balance')).body as Record<string, number>
  t.strictSame(Object.keys(balance).sort(), [...awkward].sort(), '/balance has every payer exactly')
  for (const [i, payer] of awkward.entries()) t.equal(balance[payer], i + 1, `awkward[${i}]`)
  const transactions = (await get(app, '/transactions?limit=500')).body.items as Array<{ payer: string }>
  t.strictSame(transactions.map(item => item.payer).reverse(), awkward, '/transactions')

  // The database holds exactly what was sent, as UTF-8, in the table and in the view.
  const stored = await sql<{ payer: string, bytes: number, length: number }>(app,
    'SELECT payer, octet_length(payer) AS bytes, length(payer) AS length FROM point_transactions ORDER BY id')
  t.strictSame(stored.map(row => row.payer), awkward, 'point_transactions reads back every payer exactly')
  t.strictSame(stored.map(row => row.bytes), awkward.map(bytes), 'as the UTF-8 bytes sent')
  t.strictSame(stored.map(row => row.length), awkward.map(codePoints), 'the database counts code points, as the schema does')
  const view = await sql<{ payer: string, bytes: number }>(app, 'SELECT payer, octet_length(payer) AS bytes FROM point_balances ORDER BY payer')
  t.strictSame(view.map(row => row.payer), [...awkward].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    'the point_balances view reads them back, in byte order')
  t.strictSame(view.map(row => row.bytes).sort(), awkward.map(bytes).sort(), 'the view holds the UTF-8 bytes')

  // The same payer sent again is the same payer: a spend takes from it by name.
  t.equal((await post(app, '/add', { payer: awkward[0], points: 100, timestamp: '2022-10-30T10:00:00Z' })).status, 200)
  const spend = await post(app, '/spend', { points: 101 })
  t.strictSame(spend.body, [{ payer: awkward[0], points: -101 }], 'the oldest lots are the emoji payer\'s')
})

t.test('lengths count code points, the same in the validator and in the database', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  // 65 emoji are 65 code points: over the 64 limit, though only 130 UTF-16 units.
  const tooLong = await post(app, '/add', { payer: '😀'.repeat(65), points: 1, timestamp: ts })
  t.equal(tooLong.status, 400)
  t.equal(tooLong.body.code, 'INVALID_REQUEST')
  t.equal(tooLong.body.message, 'body/payer must NOT have more than 64 characters')
  const longName = await post(app, '/users', { email: 'ada@example.com', name: '🐘'.repeat(201) })
  t.equal(longName.status, 400)
  t.equal(longName.body.message, 'body/name must NOT have more than 200 characters')
  t.strictSame(await snapshot(app), before, 'nothing stored')

  // At the limits, in code points: accepted by both.
  const name = `${'🐘'.repeat(198)}e\u0301`
  const user = await post(app, '/users', { email: 'ada@example.com', name })
  t.equal(user.status, 201)
  t.equal(user.body.name, name)
  t.equal((await get(app, '/users/1')).body.name, name, 'GET /users/:id')
  t.equal((await get(app, '/users')).body.items[0].name, name, 'GET /users')
  t.strictSame(await sql(app, 'SELECT name, octet_length(name) AS bytes, length(name) AS length FROM users'), [{ name, bytes: bytes(name), length: 200 }])
  const own = await post(app, '/users/1/points/add', { payer: '😀'.repeat(64), points: 7, timestamp: ts })
  t.equal(own.status, 200)
  t.strictSame((await get(app, '/users/1/points/balance')).body, { ['😀'.repeat(64)]: 7 })
  const view = await sql(app, 'SELECT payer, email FROM point_balances WHERE ledger_id = 1')
  t.strictSame(view, [{ payer: '😀'.repeat(64), email: 'ada@example.com' }], 'the point_balances view, with the user')
})
