import type { Page, PageRequest } from '../storage/page.js'
import type { Work } from '../storage/work.js'
import { type AlertDetails, type EventType, type FiredAlert, type IncomingEvent, type Risk, type Thresholds, tiers } from './rules.js'

export interface AlertProfile {
  user_id: number
  risk: Risk
  overrides: Partial<Thresholds>
  thresholds: Thresholds
}

export interface StoredEvent {
  id: number
  type: EventType
  amount: string
  time: number
  alert_codes: number[]
  created_at: string
}

export interface StoredAlert {
  id: number
  event_id: number
  user_id: number
  code: number
  details: AlertDetails
  created_at: string
}

/** A profile as stored (none: the medium tier), with its effective thresholds. */
export function effectiveProfile (userId: number, row: { risk: Risk, overrides: string } | undefined): AlertProfile {
  const risk = row?.risk ?? 'medium'
  const overrides = JSON.parse(row?.overrides ?? '{}') as Partial<Thresholds>
  return { user_id: userId, risk, overrides, thresholds: { ...tiers[risk], ...overrides } }
}

/** Events, alerts and alert profiles, as the routes see them on either engine. */
export interface AlertsStore {
  profile: (userId: number) => Promise<AlertProfile>
  setProfile: (userId: number, risk: Risk, overrides: Partial<Thresholds>) => Work<AlertProfile>
  /** Stores the event and the alerts it raises; refuses an event older than the user's last. */
  record: (userId: number, event: IncomingEvent) => Work<FiredAlert[]>
  events: (userId: number, page: PageRequest) => Promise<Page<StoredEvent>>
  alerts: (filter: { userId?: number | undefined, code?: number | undefined }, page: PageRequest) => Promise<Page<StoredAlert>>
}
