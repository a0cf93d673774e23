// Fetching a Client ID Metadata Document whose URL anyone may send (spec checklist item 33: SSRF, ~5 KB cap,
// no redirects; CIMD §6.5, §6.6), against a local HTTPS server whose certificate only the test's CA signs.
import t from 'tap'
import {
  ClientDocumentError,
  fetchClientDocument,
  MAX_DOCUMENT_BYTES,
  type DocumentFetchOptions
} from '../../lib/client-document-fetch.js'
import { clientDocument, startDocumentServer, TEST_CA } from '../helpers/document-server.js'

const LOCAL: DocumentFetchOptions = { allowPrivate: true, ca: TEST_CA }

/** The error `fetchClientDocument` rejects with, for its status and message. */
async function failure (url: string, options: DocumentFetchOptions = LOCAL): Promise<ClientDocumentError> {
  const err = await fetchClientDocument(url, options).then(() => undefined, (e: unknown) => e)
  if (!(err instanceof ClientDocumentError)) throw new Error(`expected a ClientDocumentError, got ${String(err)}`)
  return err
}

t.test('a document is fetched over https with its Cache-Control', async (t) => {
  const server = await startDocumentServer(t)
  server.serve('/client.json', (origin) => ({
    body: clientDocument(`${origin}/client.json`, ['http://localhost/callback']),
    headers: { 'cache-control': 'public, max-age=600' }
  }))
  const { document, cacheControl } = await fetchClientDocument(`${server.origin}/client.json`, LOCAL)
  t.equal(document.client_id, `${server.origin}/client.json`)
  t.equal(cacheControl, 'public, max-age=600')
})

t.test('CIMD §6.5 SSRF: loopback is refused unless allowed, by name and as an IP literal, before any request', async (t) => {
  const server = await startDocumentServer(t)
  server.serve('/client.json', { body: {} })
  const port = new URL(server.origin).port
  for (const url of [`${server.origin}/client.json`, `https://127.0.0.1:${port}/client.json`,
    `https://[::1]:${port}/client.json`]) {
    const err = await failure(url, { allowPrivate: false, ca: TEST_CA })
    t.equal(err.status, 400, url)
    t.match(err.message, /private or special address/)
  }
  t.equal(server.hits('/client.json'), 0, 'nothing was sent')
  t.ok(await fetchClientDocument(`https://127.0.0.1:${port}/client.json`, LOCAL), 'allowed: fetched')
})

t.test('CIMD §4.3: a redirect is not followed, and other statuses are failures naming the URL', async (t) => {
  const server = await startDocumentServer(t)
  server.serve('/moved', { status: 302, headers: { location: '/client.json' } })
  server.serve('/gone', { status: 404, body: 'not here' })
  const moved = await failure(`${server.origin}/moved`)
  t.equal(moved.status, 502)
  t.match(moved.message, `${server.origin}/moved redirects elsewhere, and redirects are not followed`)
  t.equal(server.hits('/client.json'), 0, 'the target was never asked')
  t.match((await failure(`${server.origin}/gone`)).message, 'answered HTTP 404')
})

t.test('CIMD §6.6: a body above 5 KB is refused; a body that is not a JSON object is a refused client', async (t) => {
  const server = await startDocumentServer(t)
  server.serve('/big', { body: { client_id: 'x', padding: 'a'.repeat(MAX_DOCUMENT_BYTES) } })
  server.serve('/text', { body: 'hello' })
  server.serve('/array', { body: '[1,2]' })
  const big = await failure(`${server.origin}/big`)
  t.equal(big.status, 502)
  t.match(big.message, `larger than ${MAX_DOCUMENT_BYTES} bytes`)
  for (const path of ['/text', '/array']) {
    const err = await failure(`${server.origin}${path}`)
    t.equal(err.status, 400, path)
    t.match(err.message, 'is not a JSON object')
  }
})

t.test('a slow server, an unknown host and an untrusted certificate are failures, not hangs', async (t) => {
  const server = await startDocumentServer(t)
  server.serve('/slow', { body: {}, delayMs: 2000 })
  const started = Date.now()
  const slow = await failure(`${server.origin}/slow`, { ...LOCAL, timeoutMs: 200 })
  t.ok(Date.now() - started < 1500, 'gave up at the deadline')
  t.match(slow.message, `${server.origin}/slow did not answer within 200 ms`)
  t.match((await failure('https://no-such-host.invalid/client.json')).message, 'its host name does not resolve')
  const untrusted = await failure(`${server.origin}/slow`, { allowPrivate: true, ca: undefined })
  t.equal(untrusted.status, 502)
  t.match(untrusted.message, 'is unreachable')
})
