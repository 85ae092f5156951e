import fc from 'fast-check'
import t from 'tap'
import { formatTimestamp, parseTimestamp } from '../src/points/timestamp.js'

t.test('valid RFC 3339 timestamps become fixed-width UTC', async t => {
  const cases: Array<[string, string]> = [
    ['2022-10-31T10:00:00Z', '2022-10-31T10:00:00.000Z'],
    ['2022-10-31t10:00:00z', '2022-10-31T10:00:00.000Z'],
    ['2022-10-31 10:00:00Z', '2022-10-31T10:00:00.000Z'],
    ['2022-10-31T10:00:00.1Z', '2022-10-31T10:00:00.100Z'],
    ['2022-10-31T10:00:00.123Z', '2022-10-31T10:00:00.123Z'],
    ['2022-10-31T01:00:00+02:00', '2022-10-30T23:00:00.000Z'],
    ['2022-10-31T23:30:00-01:45', '2022-11-01T01:15:00.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29T00:00:00Z', '2000-02-29T00:00:00.000Z'],
    ['0050-06-01T00:00:00Z', '0050-06-01T00:00:00.000Z'],
    ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z']
  ]
  for (const [text, utc] of cases) t.strictSame(parseTimestamp(text), { ok: true, utc }, text)
})

t.test('invalid timestamps say why', async t => {
  const cases: Array<[string, string]> = [
    ['2022-10-31T10:00:00', 'must be an RFC 3339 date-time with a zone, like 2022-10-31T10:00:00Z'],
    ['2022-10-31', 'must be an RFC 3339 date-time with a zone, like 2022-10-31T10:00:00Z'],
    ['2022-10-31T10:00:00.1234Z', 'must have at most millisecond precision'],
    ['2022-10-31T24:00:00Z', 'has a time of day out of range'],
    ['2022-10-31T23:60:00Z', 'has a time of day out of range'],
    ['2016-12-31T23:59:60Z', 'has a time of day out of range'],
    ['2022-10-31T10:00:00+24:00', 'has a time of day out of range'],
    ['2022-10-31T10:00:00+01:60', 'has a time of day out of range'],
    ['2023-02-29T00:00:00Z', 'is not a real calendar date'],
    ['1900-02-29T00:00:00Z', 'is not a real calendar date'],
    ['2022-10-00T00:00:00Z', 'is not a real calendar date'],
    ['2022-11-31T00:00:00Z', 'is not a real calendar date'],
    ['2022-13-01T00:00:00Z', 'is not a real calendar date'],
    ['2022-00-10T00:00:00Z', 'is not a real calendar date'],
    ['9999-12-31T23:00:00-02:00', 'must fall between years 0000 and 9999 in UTC'],
    ['0000-01-01T00:00:00+01:00', 'must fall between years 0000 and 9999 in UTC']
  ]
  for (const [text, reason] of cases) t.strictSame(parseTimestamp(text), { ok: false, reason }, text)
})

t.test('whole seconds are shown without milliseconds', async t => {
  t.equal(formatTimestamp('2022-10-31T10:00:00.000Z'), '2022-10-31T10:00:00Z')
  t.equal(formatTimestamp('2022-10-31T10:00:00.500Z'), '2022-10-31T10:00:00.500Z')
})

t.test('a timestamp in Z parses exactly as the same one in +00:00 (the fast path agrees with the general one)', async t => {
  const two = (max: number) => fc.integer({ min: 0, max }).map(n => String(n).padStart(2, '0'))
  const text = fc.tuple(fc.integer({ min: 0, max: 9999 }).map(n => String(n).padStart(4, '0')), two(13), two(32), two(24), two(60), two(60),
    fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{1,4}$/)))
    .map(([y, mo, d, h, mi, s, fraction]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${fraction}`)
  let accepted = 0
  fc.assert(fc.property(text, base => {
    const utc = parseTimestamp(`${base}Z`)
    if (utc.ok) accepted++
    return JSON.stringify(utc) === JSON.stringify(parseTimestamp(`${base}+00:00`))
  }), { numRuns: 3000 })
  t.ok(accepted > 300, `${accepted} of 3000 valid, the others refused alike`)
})
