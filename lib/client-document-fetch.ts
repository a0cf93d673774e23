import type { LookupAddress } from 'node:dns'
import { lookup } from 'node:dns/promises'
import type { LookupFunction } from 'node:net'
import { rootCertificates } from 'node:tls'
import { Agent } from 'undici'
import { isPublicAddress } from './outbound-address.js'
import { UpstreamError } from './upstream-as/errors.js'
import { describe, headerValue, parseJsonObject, send } from './upstream-as/http.js'

/*
 * Fetching a Client ID Metadata Document, whose URL anyone can send to /authorize: https only (the caller checks
 * the URL), the host's addresses resolved once and checked (public only, unless allowed), the connection made to
 * exactly those addresses (no second lookup an attacker's DNS could answer differently), no redirect followed,
 * at most 5 KB in at most 5 s (CIMD §6.5, §6.6).
 */

export const MAX_DOCUMENT_BYTES = 5 * 1024
export const DOCUMENT_TIMEOUT_MS = 5000

/**
 * Why a client's metadata document gives no client. The message names the document's URL (origin and path) and
 * is safe to show on the error page; `status` is the page's: 400 for a client the gateway refuses, 502 for a
 * document it could not get.
 */
export class ClientDocumentError extends Error {
  readonly status: 400 | 502

  constructor (message: string, status: 400 | 502, options?: { cause: unknown }) {
    super(message, options)
    this.name = 'ClientDocumentError'
    this.status = status
  }
}

export interface FetchedDocument {
  document: Record<string, unknown>
  cacheControl: string | undefined
}

export interface DocumentFetchOptions {
  /** Fetch from loopback, private and other special addresses too (`--cimd-allow-private`). */
  allowPrivate: boolean
  timeoutMs?: number
  /** PEM certificates trusted besides the system's: an intranet's own CA, or a test's. */
  ca?: string | undefined
}

export async function fetchClientDocument (url: string, options: DocumentFetchOptions): Promise<FetchedDocument> {
  const timeoutMs = options.timeoutMs ?? DOCUMENT_TIMEOUT_MS
  const what = 'The client metadata document'
  const where = `${what} ${describe(url)}`
  const startedAt = performance.now()
  const addresses = await resolve(new URL(url).hostname, timeoutMs, where)
  if (!options.allowPrivate && addresses.some(({ address }) => !isPublicAddress(address))) {
    throw new ClientDocumentError(`${where} is on a private or special address, which this gateway does not fetch`, 400)
  }
  const agent = new Agent({
    connect: {
      lookup: pinnedLookup(addresses),
      ...(options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca] })
    }
  })
  let reply
  try {
    const remainingMs = Math.max(1, Math.round(timeoutMs - (performance.now() - startedAt)))
    reply = await send(url, { method: 'GET', headers: { accept: 'application/json' } }, what, {
      timeoutMs: remainingMs,
      maxBodyBytes: MAX_DOCUMENT_BYTES,
      dispatcher: agent
    })
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err
    // The deadline covers the lookup too: named as configured, not as what was left of it.
    const message = err.kind === 'timeout' ? `${where} did not answer within ${timeoutMs} ms` : err.message
    throw new ClientDocumentError(message, 502, { cause: err })
  } finally {
    await agent.destroy()
  }
  if (reply.status >= 300 && reply.status < 400) {
    throw new ClientDocumentError(`${where} redirects elsewhere, and redirects are not followed`, 502)
  }
  if (reply.status !== 200) throw new ClientDocumentError(`${where} answered HTTP ${reply.status}`, 502)
  const document = parseJsonObject(reply.body)
  if (document === undefined) throw new ClientDocumentError(`${where} is not a JSON object`, 400)
  return { document, cacheControl: headerValue(reply.headers['cache-control']) }
}

/** Every address of `host` (an IP literal is its own), within the deadline. */
async function resolve (host: string, timeoutMs: number, where: string): Promise<LookupAddress[]> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new ClientDocumentError(`${where} did not answer within ${timeoutMs} ms`, 502))
    }, timeoutMs)
  })
  try {
    return await Promise.race([lookup(host.replace(/^\[(.*)\]$/, '$1'), { all: true }), deadline])
  } catch (err) {
    if (err instanceof ClientDocumentError) throw err
    throw new ClientDocumentError(`${where} is unreachable: its host name does not resolve`, 502, { cause: err })
  } finally {
    clearTimeout(timer)
  }
}

/** A lookup that answers with the addresses already checked, whatever DNS would say now. */
function pinnedLookup (addresses: LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0] as LookupAddress
    if (options.all === true) callback(null, addresses)
    else callback(null, first.address, first.family)
  }
}
