import t from 'tap'

// The date-sensitive tests again, in a zone three hours behind UTC. A day or an instant computed in
// local time instead of UTC fails here, even on a machine (or CI) that runs in UTC. Node applies a
// TZ set at run time, and the commands these tests start inherit it.
process.env.TZ = 'America/Sao_Paulo'

t.test('the zone is in effect', async t => {
  t.equal(new Date('2026-11-23T01:00:00Z').getDate(), 22, 'local time is behind UTC')
  t.equal(new Date('2026-11-23T01:00:00Z').getTimezoneOffset(), 180)
})

await import('./contract/daily-grant.test.js')
await import('./timestamp.test.js')
