// RFC 3339 date-time with a zone: 2022-10-31T10:00:00Z, 2022-10-31T12:00:00.5+02:00.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

// The form most clients send, already UTC: 2022-10-31T10:00:00Z, 2022-10-31T10:00:00.5Z.
const UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z$/
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

export type ParsedTimestamp = { ok: true, utc: string } | { ok: false, reason: string }

/**
 * Parses an RFC 3339 timestamp into tally's stored form, fixed-width UTC with milliseconds
 * ('2022-10-31T10:00:00.000Z'), which sorts correctly as text. Refuses rather than rounds:
 * more than millisecond precision, impossible dates and leap seconds are errors.
 */
export function parseTimestamp (text: string): ParsedTimestamp {
  return parseUtc(text) ?? parseAny(text)
}

/**
 * The common case, five times faster than parseAny (a bulk import parses 10 000): a valid UTC
 * timestamp, checked by arithmetic rather than through a Date. Anything else, valid or not, is
 * left to parseAny (undefined), which then answers what it always did.
 */
function parseUtc (text: string): ParsedTimestamp | undefined {
  const m = UTC.exec(text)
  if (m === null) return undefined
  const [, y, mo, d, h, mi, s, fraction = ''] = m as unknown as string[]
  const year = Number(y)
  const month = Number(mo)
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 && leap ? 29 : DAYS[month - 1]
  if (days === undefined || Number(d) < 1 || Number(d) > days || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined
  return { ok: true, utc: `${y}-${mo}-${d}T${h}:${mi}:${s}.${fraction.padEnd(3, '0')}Z` }
}

function parseAny (text: string): ParsedTimestamp {
  const m = RFC3339.exec(text)
  if (m === null) return { ok: false, reason: 'must be an RFC 3339 date-time with a zone, like 2022-10-31T10:00:00Z' }
  const [, y, mo, d, h, mi, s, fraction = '', , sign, oh, om] = m
  if (fraction.length > 3) return { ok: false, reason: 'must have at most millisecond precision' }
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const [hour, minute, second] = [Number(h), Number(mi), Number(s)]
  const offset = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om))
  if (hour > 23 || minute > 59 || second > 59 || Number(oh ?? 0) > 23 || Number(om ?? 0) > 59) {
    return { ok: false, reason: 'has a time of day out of range' }
  }
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return { ok: false, reason: 'is not a real calendar date' }
  }
  date.setUTCHours(hour, minute - offset, second, Number(fraction.padEnd(3, '0')))
  const utc = date.toISOString()
  if (utc.length !== 24) return { ok: false, reason: 'must fall between years 0000 and 9999 in UTC' }
  return { ok: true, utc }
}

/** The stored form back to the API's: whole seconds lose their '.000'. */
export function formatTimestamp (utc: string): string {
  return utc.endsWith('.000Z') ? `${utc.slice(0, 19)}Z` : utc
}
