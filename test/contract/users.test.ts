import t from 'tap'
import { build, get, post, snapshot } from '../helper.js'

const now = () => new Date('2026-11-22T09:00:00.000Z')

t.test('POST /users creates a user with 0 credits; the first gets id 1', async t => {
  const app = await build(t, { now })
  const res = await post(app, '/users', { email: 'ada@example.com', name: 'Ada Lovelace' })
  t.equal(res.status, 201)
  t.strictSame(res.body, { id: 1, email: 'ada@example.com', name: 'Ada Lovelace', credits: 0, created_at: '2026-11-22T09:00:00.000Z' })
  const slash = await post(app, '/users/', { email: 'bob@example.com', name: 'Bob' })
  t.equal(slash.status, 201, '/users/ works too')
  t.equal(slash.body.id, 2)
  t.strictSame((await get(app, '/users/1')).body, res.body)
  t.strictSame((await get(app, '/api/credits/2')).body, { user_id: 2, credits: 0, updated_at: '2026-11-22T09:00:00.000Z' })
})

t.test('an email already taken, in any letter case, is 409 EMAIL_TAKEN and changes nothing', async t => {
  const app = await build(t)
  await post(app, '/users', { email: 'Ada@Example.com', name: 'Ada' })
  const before = await snapshot(app)
  for (const email of ['ada@example.com', 'ADA@EXAMPLE.COM', 'Ada@Example.com', 'aDA@eXAMPLE.cOM']) {
    const res = await post(app, '/users', { email, name: 'Someone' })
    t.equal(res.status, 409, email)
    t.strictSame(res.body, { statusCode: 409, error: 'Conflict', message: `The email ${email} is already taken`, code: 'EMAIL_TAKEN' })
  }
  t.strictSame(await snapshot(app), before)
})

t.test('invalid users are 400 and change nothing', async t => {
  const app = await build(t)
  const before = await snapshot(app)
  const cases: Array<[string, unknown]> = [
    ['no email', { name: 'A' }],
    ['no name', { email: 'a@example.com' }],
    ['an invalid email', { email: 'not-an-email', name: 'A' }],
    ['an email with spaces', { email: 'a b@example.com', name: 'A' }],
    ['an empty name', { email: 'a@example.com', name: '' }],
    ['a blank name', { email: 'a@example.com', name: '   ' }],
    ['a name too long', { email: 'a@example.com', name: 'x'.repeat(201) }],
    ['an unknown field', { email: 'a@example.com', name: 'A', admin: true }],
    ['a number as email', { email: 5, name: 'A' }],
    ['a non-ASCII email (addresses are ASCII)', { email: 'élodie@exemple.fr', name: 'A' }]
  ]
  for (const [what, body] of cases) {
    const res = await post(app, '/users', body)
    t.equal(res.status, 400, what)
    t.equal(res.body.code, 'INVALID_REQUEST', what)
  }
  t.strictSame(await snapshot(app), before)
})

t.test('GET /users/:id: 404 for an unknown user, 400 for a bad id', async t => {
  const app = await build(t)
  const missing = await get(app, '/users/7')
  t.equal(missing.status, 404)
  t.strictSame(missing.body, { statusCode: 404, error: 'Not Found', message: 'User 7 not found', code: 'USER_NOT_FOUND' })
  for (const id of ['0', '-1', '1.5', 'abc', '99999999999999999999']) {
    const res = await get(app, `/users/${id}`)
    t.equal(res.status, 400, id)
    t.equal(res.body.code, 'INVALID_REQUEST', id)
  }
})

t.test('GET /users pages newest first', async t => {
  const app = await build(t)
  for (let i = 1; i <= 5; i++) await post(app, '/users', { email: `u${i}@example.com`, name: `U${i}` })
  const first = await get(app, '/users?limit=3')
  t.strictSame(first.body.items.map((u: { id: number }) => u.id), [5, 4, 3])
  t.equal(first.body.next_cursor, 3)
  const second = await get(app, '/users?limit=3&cursor=3')
  t.strictSame(second.body.items.map((u: { id: number }) => u.id), [2, 1])
  t.equal(second.body.next_cursor, null)
})
