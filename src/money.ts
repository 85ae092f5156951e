// Money crosses the API as decimal strings ("42.00") and lives everywhere else as integer cents.

/** A positive or zero decimal with at most two decimals and at most 13 integer digits. */
export const AMOUNT_PATTERN = '^(0|[1-9][0-9]{0,12})(\\.[0-9]{1,2})?$'
const amount = new RegExp(AMOUNT_PATTERN)

/** "42.5" → 4250; null when the text is not an amount. */
export function toCents (text: string): number | null {
  const m = amount.exec(text)
  if (m === null) return null
  const [, whole, fraction = '.'] = m
  return Number(whole) * 100 + Number(fraction.slice(1).padEnd(2, '0'))
}

/** 4250 → "42.50"; exact for any integer of cents, a BigInt included (a window's total). */
export function formatCents (cents: number | bigint): string {
  const exact = BigInt(cents)
  return `${exact / 100n}.${String(exact % 100n).padStart(2, '0')}`
}
