// The cache of Client ID Metadata Documents (spec checklist item 33: cache honouring HTTP headers, never an error or
// an invalid document; CIMD §4.4), one fetch per URL at a time, and the operator's policy applied on every read.
import t from 'tap'
import { ClientDocumentError, type FetchedDocument } from '../../lib/client-document-fetch.js'
import { ClientDocuments, type ClientDocumentsOptions } from '../../lib/client-documents.js'
import { ManualClock } from '../../lib/clock.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { StoreFullError } from '../../lib/stores/errors.js'

const URL_A = 'https://app.example/client.json'
const URL_B = 'https://other.example/client.json'
const MINUTE = 60_000

interface Harness {
  documents: ClientDocuments
  options: ClientDocumentsOptions
  clock: ManualClock
  fetched: string[]
  /** What the next fetches of a URL return; a function to control timing. */
  answers: Map<string, () => Promise<FetchedDocument>>
}

const valid = (url: string, cacheControl?: string) => async (): Promise<FetchedDocument> =>
  ({ document: { client_id: url, client_name: 'App', redirect_uris: ['http://localhost/cb'] }, cacheControl })

function harness (options: Partial<ClientDocumentsOptions> = {}): Harness {
  const clock = new ManualClock()
  const store = new MemoryStore({ clock })
  const fetched: string[] = []
  const answers = new Map<string, () => Promise<FetchedDocument>>([[URL_A, valid(URL_A)], [URL_B, valid(URL_B)]])
  const all: ClientDocumentsOptions = {
    store,
    clock,
    fetch: async (url) => {
      fetched.push(url)
      return await (answers.get(url) as () => Promise<FetchedDocument>)()
    },
    allowedHosts: [],
    redirectUriAllow: [],
    maxCached: 100,
    maxFetches: 8,
    ...options
  }
  return { documents: new ClientDocuments(all), options: all, clock, fetched, answers }
}

t.test('a valid document is the client, with the URL as its id, a public client', async (t) => {
  const { documents } = harness()
  const client = await documents.find(URL_A)
  t.equal(client.clientId, URL_A)
  t.equal(client.secretHash, undefined)
  t.same(client.metadata.redirect_uris, ['http://localhost/cb'])
  t.equal(client.metadata.token_endpoint_auth_method, 'none')
})

t.test('CIMD §4.4: cached for max-age within 5 minutes to 24 hours, so a burst of sign-ins fetches once', async (t) => {
  for (const [cacheControl, lifetimeMs] of [[undefined, 5 * MINUTE], ['no-store', 5 * MINUTE],
    ['max-age=60', 5 * MINUTE], ['max-age=3600', 60 * MINUTE], ['max-age=31536000', 24 * 60 * MINUTE]] as const) {
    const { documents, clock, fetched, answers } = harness()
    answers.set(URL_A, valid(URL_A, cacheControl))
    await documents.find(URL_A)
    clock.advance(lifetimeMs - 1000)
    await documents.find(URL_A)
    t.equal(fetched.length, 1, `${String(cacheControl)}: cached until its lifetime`)
    clock.advance(2000)
    await documents.find(URL_A)
    t.equal(fetched.length, 2, `${String(cacheControl)}: fetched again after it`)
  }
})

t.test('CIMD §4.4: an invalid document and a failed fetch are not cached', async (t) => {
  const { documents, fetched, answers } = harness()
  answers.set(URL_A, async () => ({
    document: { client_id: URL_B, redirect_uris: ['http://localhost/cb'] },
    cacheControl: 'max-age=3600'
  }))
  for (let i = 0; i < 2; i++) {
    await t.rejects(documents.find(URL_A), { status: 400, message: /not the URL it was fetched from/ })
  }
  t.equal(fetched.length, 2, 'fetched each time')
  answers.set(URL_A, async () => { throw new ClientDocumentError('down', 502) })
  await t.rejects(documents.find(URL_A), { message: 'down' })
  answers.set(URL_A, valid(URL_A))
  t.ok(await documents.find(URL_A), 'the next attempt fetches again and succeeds')
  t.equal(fetched.length, 4)
})

t.test('one fetch per URL at a time; at the bound of fetches at once, a new one is refused, not queued', async (t) => {
  const { documents, fetched, answers } = harness({ maxFetches: 1 })
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  answers.set(URL_A, async () => { await gate; return await valid(URL_A)() })
  const first = documents.find(URL_A)
  const second = documents.find(URL_A)
  await t.rejects(documents.find(URL_B), StoreFullError, 'another URL meanwhile: the bound')
  release()
  t.equal((await first).clientId, URL_A)
  t.equal((await second).clientId, URL_A)
  t.same(fetched, [URL_A], 'the burst shared one fetch')
  t.equal((await documents.find(URL_B)).clientId, URL_B, 'free again once it finished')
})

t.test('a full cache still serves documents, fetched each time, and evicts nothing', async (t) => {
  const { documents, fetched } = harness({ maxCached: 1 })
  await documents.find(URL_A)
  await documents.find(URL_B)
  await documents.find(URL_B)
  await documents.find(URL_A)
  t.same(fetched, [URL_A, URL_B, URL_B], 'A stayed cached; B was never cached')
})

t.test('the operator\'s policy applies on every read, to cached documents too', async (t) => {
  const open = harness()
  await open.documents.find(URL_A)
  // A restart with a stricter policy, on the same store: the cached document is judged again.
  const strict = new ClientDocuments({ ...open.options, redirectUriAllow: ['https://app.example/*'] })
  await t.rejects(strict.find(URL_A), { status: 400, message: /refused: this gateway accepts only the redirect URIs/ })
  t.equal(open.fetched.length, 1, 'the cached document, not a new fetch')

  const hostOnly = harness({ allowedHosts: ['other.example'] })
  await t.rejects(hostOnly.documents.find(URL_A), {
    status: 400,
    message: 'This gateway does not accept clients from app.example.'
  })
  t.equal(hostOnly.fetched.length, 0, 'a host outside the list is never fetched')
  t.equal((await hostOnly.documents.find(URL_B)).clientId, URL_B)
})
