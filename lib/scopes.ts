/**
 * Scope lists. Two spellings meet in the gateway: the OAuth `scope` parameter of our own clients, space-delimited
 * (RFC 6749 §3.3), and upstream or operator lists that may also use commas (GitHub answers "repo,gist").
 */

/** The items of a comma- or whitespace-separated list, in order, duplicates kept. */
export function splitScopeList (text: string): string[] {
  return text.split(/[\s,]+/).filter((scope) => scope !== '')
}

/**
 * Scopes as a list without duplicates, from a comma- or whitespace-separated string or an array
 * of them; anything else is none.
 */
export function parseScopes (value: unknown): string[] {
  const texts = typeof value === 'string'
    ? [value]
    : Array.isArray(value) ? value.filter((item) => typeof item === 'string') : []
  const scopes: string[] = []
  for (const text of texts) {
    for (const scope of splitScopeList(text)) if (!scopes.includes(scope)) scopes.push(scope)
  }
  return scopes
}

/**
 * An RFC 6749 §3.3 `scope` parameter as a list: space-delimited only, since a comma is a legal scope character there.
 */
export function parseScopeParam (value: string): string[] {
  return value.split(' ').filter((scope) => scope !== '')
}

/** Every scope of `a`, then those of `b` not in `a`, each once. */
export function scopeUnion (a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])]
}

/** True when every scope asked for is among those held. */
export function isScopeSubset (asked: readonly string[], held: readonly string[]): boolean {
  const allowed = new Set(held)
  return asked.every((scope) => allowed.has(scope))
}
