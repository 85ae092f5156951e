import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ForbiddenKey, UnstorableText, UnsupportedCharset } from '../errors.js'

// A JSON body is UTF-8 (RFC 8259 §8.1), and every string in it is stored exactly as sent, or
// refused: Node would replace bytes that are not UTF-8 with U+FFFD, SQLite's length() stops at
// U+0000, and a lone surrogate ("\ud800") has no UTF-8 form at all.

// fatal: bytes that are not UTF-8 throw instead of becoming U+FFFD. ignoreBOM: a leading
// byte-order mark stays in the text for the JSON parser to skip, as it always has.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const UTF8_LABELS = new Set(['utf-8', 'utf8'])
const CHARSET = /;\s*charset=(?:"([^"]*)"|([^\s;]*))/i
// With the u flag a well-formed pair is one code point, so this matches only a lone surrogate.
const LONE_SURROGATE = /\p{Surrogate}/u

function problemWith (text: string, where: string): string | undefined {
  if (text.includes('\u0000')) return `${where} must not contain U+0000 (NUL): it cannot be stored`
  if (LONE_SURROGATE.test(text)) return `${where} must not contain a lone surrogate (U+D800 to U+DFFF): it has no UTF-8 form`
  return undefined
}

/** Why the first string (a value or a key) of a parsed body cannot be stored, if one cannot. */
function unstorable (value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return problemWith(value, path)
  if (typeof value !== 'object' || value === null) return undefined
  for (const [key, item] of Object.entries(value)) {
    const problem = problemWith(key, `a key of ${path}`) ?? unstorable(item, `${path}/${key}`)
    if (problem !== undefined) return problem
  }
  return undefined
}

type Done = (err: Error | null, body?: unknown) => void

/**
 * Whether `text` is JSON that only secure-json-parse refused: valid JSON with a __proto__ key or a
 * constructor.prototype, which would change the prototype of objects built from the body. Like
 * secure-json-parse, it skips a leading byte-order mark, which JSON.parse would not.
 */
function isPlainJson (text: string): boolean {
  try {
    JSON.parse(text.replace(/^\uFEFF/, ''))
    return true
  } catch {
    return false
  }
}

export default fp(async (app: FastifyInstance) => {
  const { onProtoPoisoning, onConstructorPoisoning } = app.initialConfig
  const parseJson = app.getDefaultJsonParser(onProtoPoisoning!, onConstructorPoisoning!) as
    (request: FastifyRequest, body: string, done: Done) => void

  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw: Buffer, done: Done) => {
    // The header matched application/json to get here, so it is a string.
    const charset = CHARSET.exec(request.headers['content-type'] as string)
    if (charset !== null) {
      const label = charset[1] ?? charset[2]!
      if (!UTF8_LABELS.has(label.toLowerCase())) return done(new UnsupportedCharset(label))
    }
    let text: string
    try {
      text = utf8.decode(raw)
    } catch {
      return done(new UnstorableText('The body is not valid UTF-8'))
    }
    parseJson(request, text, (err, body) => {
      if (err !== null) return done(isPlainJson(text) ? new ForbiddenKey() : err)
      // U+0000 and lone surrogates can only be written as \u escapes: most bodies have none.
      let problem: string | undefined
      try {
        problem = text.includes('\\u') ? unstorable(body, 'body') : undefined
      } catch {
        // Nested past the stack: no route takes such a body, and the parser's caller must not
        // see a throw (it would answer INVALID_JSON, or FORBIDDEN_KEY, for valid JSON).
        problem = 'The body is nested too deep'
      }
      done(problem === undefined ? null : new UnstorableText(problem), body)
    })
  })
}, { name: 'json-body' })
