import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Teardown } from './teardown.js'

/*
 * A local HTTPS server for Client ID Metadata Documents (CIMD), with a certificate for localhost, 127.0.0.1 and
 * [::1] signed by a CA only the tests trust (tls/ca.pem, handed to the gateway as `clientDocumentCa`). Each path
 * answers as the test says; every request is counted, so a test can show that a cache saved a fetch.
 */

const TLS_DIR = new URL('./tls/', import.meta.url)
/** The test CA, to pass as the gateway's `clientDocumentCa`. */
export const TEST_CA = readFileSync(new URL('ca.pem', TLS_DIR), 'utf8')

export interface DocumentAnswer {
  status?: number
  headers?: Record<string, string>
  /** An object is sent as JSON; a string as it is. */
  body?: unknown
  /** Milliseconds before the answer. */
  delayMs?: number
}

export interface DocumentServer {
  /** https://localhost:port */
  origin: string
  /** Sets what `path` answers from now on. */
  serve: (path: string, answer: DocumentAnswer | ((origin: string) => DocumentAnswer)) => void
  /** Requests received for `path` so far. */
  hits: (path: string) => number
}

/** A metadata document for the URL `clientId` with the given redirect URIs and any other fields. */
export function clientDocument (
  clientId: string,
  redirectUris: string[],
  extra: Record<string, unknown> = {}
): Record<string, unknown> {
  return { client_id: clientId, client_name: 'Document Client', redirect_uris: redirectUris, ...extra }
}

export async function startDocumentServer (t: Teardown, plainHttp = false): Promise<DocumentServer> {
  const answers = new Map<string, DocumentAnswer | ((origin: string) => DocumentAnswer)>()
  const counts = new Map<string, number>()
  let origin = ''
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'https://x').pathname
    counts.set(path, (counts.get(path) ?? 0) + 1)
    const configured = answers.get(path)
    const answer = typeof configured === 'function' ? configured(origin) : configured ?? { status: 404, body: '' }
    const body = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {})
    const send = (): void => {
      if (res.destroyed) return
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
      res.end(body)
    }
    if (answer.delayMs === undefined) send()
    else setTimeout(send, answer.delayMs).unref()
  }
  const server = plainHttp
    ? createServer(handler)
    : createHttpsServer({
      key: readFileSync(new URL('localhost-key.pem', TLS_DIR)),
      cert: readFileSync(new URL('localhost.pem', TLS_DIR))
    }, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => {
    server.closeAllConnections()
    server.close(resolve)
  }))
  origin = `${plainHttp ? 'http' : 'https'}://localhost:${(server.address() as AddressInfo).port}`
  return {
    origin,
    serve: (path, answer) => { answers.set(path, answer) },
    hits: (path) => counts.get(path) ?? 0
  }
}
