import { CreditsTooLarge, InsufficientCredits } from '../errors.js'

// The credit rules, written once for both engines: a balance in, the next balance out, or a
// refusal.

const MAX = Number.MAX_SAFE_INTEGER

export const addCredits = (credits: number, amount: number): number => {
  if (credits + amount > MAX) throw new CreditsTooLarge()
  return credits + amount
}

export const deductCredits = (credits: number, amount: number): number => {
  if (credits < amount) throw new InsufficientCredits(amount, credits)
  return credits - amount
}

/** The most a balance may hold before a daily grant of `amount`: that user is skipped, not everyone. */
export const grantCeiling = (amount: number): number => MAX - amount
