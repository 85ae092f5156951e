// Keyset pagination, newest first: a page is the rows with id below the cursor.

export interface PageRequest {
  /** The previous page's next_cursor; absent for the newest page. */
  cursor?: number | undefined
  limit: number
}

export interface Page<T> {
  items: T[]
  next_cursor: number | null
}

/** The id to read below: everything when there is no cursor. */
export function pageStart (page: PageRequest): number {
  return page.cursor ?? Number.MAX_SAFE_INTEGER
}

/** `rows` were read with LIMIT limit + 1: the extra row, if any, says another page exists. */
export function toPage<T extends { id: number }> (rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit)
  return { items, next_cursor: rows.length > limit ? items[items.length - 1]!.id : null }
}
