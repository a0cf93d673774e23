/** Which cap refused an exchange: its grant's share (the client should slow down) or the gateway's (try later). */
export type StreamRefusal = 'grant' | 'total'

/**
 * Proxied exchanges open at once, per grant and in total: a request from before it is sent upstream until its
 * response (an event stream included) has ended or its client has left. An event stream holds an upstream
 * connection and two sockets for as long as it lives, so one client, or all of them, cannot open more than
 * their share. Nothing is ever cut: a full gateway refuses new exchanges only.
 */
export class StreamLimits {
  readonly #maxTotal: number
  readonly #maxPerGrant: number
  /** Grant id → exchanges open; a grant with none has no entry, so the map holds only grants in use. */
  readonly #perGrant = new Map<string, number>()
  #total = 0

  constructor ({ maxTotal, maxPerGrant }: { maxTotal: number, maxPerGrant: number }) {
    this.#maxTotal = maxTotal
    this.#maxPerGrant = maxPerGrant
  }

  /** Counts one more exchange of `grantId`, or says which cap refuses it, counting nothing. */
  acquire (grantId: string): StreamRefusal | undefined {
    const open = this.#perGrant.get(grantId) ?? 0
    if (open >= this.#maxPerGrant) return 'grant'
    if (this.#total >= this.#maxTotal) return 'total'
    this.#perGrant.set(grantId, open + 1)
    this.#total++
    return undefined
  }

  /** An exchange of `grantId` has ended: once for each acquire() that counted it. */
  release (grantId: string): void {
    const open = this.#perGrant.get(grantId)
    // A release without its acquire must not push the counts below what is open.
    if (open === undefined) return
    if (open === 1) this.#perGrant.delete(grantId)
    else this.#perGrant.set(grantId, open - 1)
    this.#total--
  }

  /** Exchanges open in total. */
  get total (): number {
    return this.#total
  }

  /** Exchanges of `grantId` open. */
  openFor (grantId: string): number {
    return this.#perGrant.get(grantId) ?? 0
  }

  /** Grants with an exchange open: what the map holds. */
  get grants (): number {
    return this.#perGrant.size
  }
}
