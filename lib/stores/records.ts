/** A record's kind: its key up to the first ':' (`flow:abc` → `flow`). add() bounds by it, the checks go by it. */
export function storeKind (key: string): string {
  const colon = key.indexOf(':')
  return colon === -1 ? key : key.slice(0, colon)
}
