import type { Page, PageRequest } from '../storage/page.js'
import type { Work } from '../storage/work.js'

export interface User {
  id: number
  email: string
  name: string
  credits: number
  created_at: string
}

/** Users, as the routes see them on either engine: created once per email in any letter case. */
export interface UsersStore {
  /** EMAIL_TAKEN (409) when the email, lowercased, is taken; the schema's UNIQUE decides. */
  create: (email: string, name: string) => Work<User>
  /** USER_NOT_FOUND (404) for an unknown id. */
  get: (id: number) => Promise<User>
  list: (page: PageRequest) => Promise<Page<User>>
}

/** The key an email is unique by: one account per address, whatever its letter case. */
export const emailKey = (email: string): string => email.toLowerCase()
