import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ConfigError } from '../../lib/config.js'
import { createPkcePair } from '../../lib/pkce.js'
import { hashPassword } from '../../lib/passwords.js'
import { tempFile } from '../helpers/temp-file.js'
import { Browser, buildGateway, pathOf, registerClient, startFlow, visitUpstream } from '../helpers/gateway.js'
import { loggedGateway } from '../helpers/logged-gateway.js'

/*
 * Issue 19, personal accounts: screen 1 checks the users file (name:hash lines) instead of the one configured
 * account, the file is re-read when it changes, and the person's name goes with the sign-in: on the consent
 * page, in the OAuth event lines, and on the grant.
 */

const REDIRECT = 'http://127.0.0.1:33418/callback'
const ALICE = await hashPassword('alice password')
const BOB = await hashPassword('bob password')

interface Attempt {
  status: number
  location: string
  body: string
  browser: Browser
  flow: { flow: string, csrf: string }
}

t.test('users file: each person signs in with their own password; the one account no longer works', async (t) => {
  const { app, logs } = await loggedGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\nbob:${BOB}\n`) })
  const client = await registerClient(app, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
  const attempt = async (username: string, password: string): Promise<Attempt> => {
    const browser = new Browser()
    const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
    const res = await browser.post(app, '/login', { ...flow, username, password })
    return { status: res.statusCode, location: String(res.headers.location), body: res.body, browser, flow }
  }
  for (const [username, password] of [['alice', 'bob password'], ['gateway_user', 'gateway_pass'], ['carol', 'x']] as const) {
    const res = await attempt(username, password)
    t.equal(res.status, 401, `${username}: refused`)
    t.match(res.body, 'Wrong username or password.')
  }
  const alice = await attempt('alice', 'alice password')
  t.equal(alice.status, 303)
  const consent = await alice.browser.get(app, alice.location)
  t.match(consent.body, 'Signed in to the gateway as <strong>alice</strong>', 'the consent page names the person')
  const approved = await alice.browser.post(app, '/consent', { ...alice.flow, decision: 'approve' })
  const callback = await alice.browser.get(app, pathOf(await visitUpstream(approved.headers.location as string)))
  t.equal(callback.statusCode, 302)
  const events = logs.filter((line) => typeof line.event === 'string')
  for (const event of ['login_succeeded', 'consent_given', 'code_issued']) {
    t.match(events.find((line) => line.event === event), { userId: 'alice', clientId: client.client_id }, event)
  }
  t.notOk(logs.some((line) => JSON.stringify(line).includes('alice password')), 'no password in any log line')
})

t.test('users file: a changed file applies without a restart; a broken one keeps the accounts read before', async (t) => {
  const path = tempFile(t, `alice:${ALICE}\n`)
  const { app } = await buildGateway(t, { usersFile: path })
  const client = await registerClient(app, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
  const status = async (username: string, password: string): Promise<number> => {
    const browser = new Browser()
    const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
    return (await browser.post(app, '/login', { ...flow, username, password })).statusCode
  }
  t.equal(await status('bob', 'bob password'), 401)
  writeFileSync(path, `alice:${ALICE}\nbob:${BOB}\n`)
  let bob = 401
  // Every try is a new sign-in at /authorize, which is rate limited per address: a few tries, not dozens.
  for (let i = 0; i < 20 && bob !== 303; i++) {
    await sleep(500)
    bob = await status('bob', 'bob password')
  }
  t.equal(bob, 303, 'bob signs in once the file is read again (polled every 2 s)')
  writeFileSync(path, 'alice:broken\n')
  await sleep(2500)
  t.equal(await status('bob', 'bob password'), 303, 'a broken file changes nothing')
})

t.test('users file: one that cannot be used stops the start, naming the file and the line', async (t) => {
  const path = tempFile(t, `alice:${ALICE}\nbob\n`)
  const err = await buildGateway(t, { usersFile: path }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.same((err as ConfigError).problems,
    [`usersFile: ${path} line 2: expected name:hash, with a name of 1 to 256 characters without spaces or ':'`])
  await t.rejects(buildGateway(t, { usersFile: join(path, 'nothing') }), { name: 'ConfigError', message: /cannot be read/ })
})

t.test('users file: the published default password is not refused with a public URL, since it is not used', async (t) => {
  const path = tempFile(t, `alice:${ALICE}\n`)
  const { app } = await buildGateway(t, { usersFile: path, publicUrl: 'https://gw.example.com' })
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})
