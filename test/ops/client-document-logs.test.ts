import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import { clientDocument, startDocumentServer, TEST_CA } from '../helpers/document-server.js'
import { authorizeUrl } from '../helpers/gateway.js'
import { loggedGateway } from '../helpers/logged-gateway.js'

/*
 * A client metadata document the gateway cannot fetch may be every CIMD client failing to sign in (egress
 * blocked, a CA missing): the operator must hear of it at warn. But anyone can send such a client id, so it is one
 * warning a minute and info after that. A document that is fetched and refused is the client's problem: info.
 * A file of its own: the once-a-minute memory is per process, and this test needs it fresh.
 */

const REDIRECT = 'http://127.0.0.1:33418/callback'
const WARN = 40
const INFO = 30

t.test('an unreachable document: warn once a minute, then info; a refused one: info', async (t) => {
  const docs = await startDocumentServer(t)
  const { app, logs } = await loggedGateway(t, { cimdAllowPrivate: true, clientDocumentCa: TEST_CA })
  docs.serve('/gone.json', { status: 404 })
  docs.serve('/nameless.json', (origin) => ({ body: clientDocument(`${origin}/nameless.json`, [REDIRECT], { client_name: '' }) }))
  const { challenge } = createPkcePair()
  const visit = async (path: string): Promise<number> => (await app.inject({
    method: 'GET',
    url: authorizeUrl({ client_id: docs.origin + path, redirect_uris: [REDIRECT] }, { challenge })
  })).statusCode
  t.same([await visit('/gone.json'), await visit('/gone.json'), await visit('/nameless.json')], [502, 502, 400])
  const lines = logs.filter((line) => line.msg === 'authorize: client metadata document refused')
  t.same(lines.map((line) => [line.level, line.statusCode]), [[WARN, 502], [INFO, 502], [INFO, 400]])
  t.match(lines[0], { detail: `The client metadata document ${docs.origin}/gone.json answered HTTP 404` })
})
