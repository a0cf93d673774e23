import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { indexKey } from '../../lib/grant-index.js'
import { grantsCommand } from '../../lib/grants-command.js'
import { hashPassword } from '../../lib/passwords.js'
import { createPkcePair } from '../../lib/pkce.js'
import { StoreUnavailableError } from '../../lib/stores/errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'
import {
  Browser, SECRET, buildGateway, exchangeCode, pathOf, registerClient, startFlow, visitUpstream,
  type RegisteredClient
} from '../helpers/gateway.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { SHARED_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { tempFile } from '../helpers/temp-file.js'

/*
 * Issue 19 part 4, the operator's CLI: `mcp-oauth-gateway grants list [--user U]` and
 * `grants revoke <grant|--user U>` on the gateway's own store. In process against a memory store shared with a
 * gateway (a memory store lives in one process), and as the built command (server.ts, spawned) on Redis, where a
 * revocation reaches the running gateway's token cache at once (every replica forgets it).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const REDIRECT = 'http://127.0.0.1:33418/callback'
const ALICE = await hashPassword('alice password')
const BOB = await hashPassword('bob password')
t.setTimeout(120_000)

interface Run { code: number | null, stdout: string, stderr: string }

async function connect (
  app: FastifyInstance,
  client: RegisteredClient,
  username: string,
  password: string
): Promise<string> {
  const browser = new Browser()
  const { verifier, challenge } = createPkcePair()
  const flow = await startFlow(app, browser, client, { challenge })
  await browser.post(app, '/login', { ...flow, username, password })
  const consent = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
  const callback = await browser.get(app, pathOf(await visitUpstream(consent.headers.location as string)))
  const code = new URL(callback.headers.location as string).searchParams.get('code') as string
  return (await exchangeCode(app, client, code, verifier)).json().access_token as string
}

async function mcpStatus (app: FastifyInstance, token: string): Promise<number> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  return (await app.inject({ method: 'POST', url: '/mcp', headers, payload: '{}' })).statusCode
}

/** The command in this process, on `store`. */
async function run (argv: string[], store?: Store, env: Record<string, string> = {}): Promise<Run> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  stderr.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
  const code = await grantsCommand(argv, { env, stdout, stderr, ...(store === undefined ? {} : { store }) })
  return { code, stdout: out, stderr: err }
}

/** The command as an operator runs it: server.ts with `grants …`, no MCP_GATEWAY_* from this environment. */
async function spawnCommand (args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MCP_GATEWAY_')))
  const child = spawn(process.execPath, [...process.execArgv, 'server.ts', 'grants', ...args], { cwd: ROOT, env })
  child.stdin.end()
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

t.test('grants command on a memory store shared with a gateway: lists everyone\'s grants, or one person\'s', async (t) => {
  const store = new MemoryStore()
  t.teardown(async () => { await store.close() })
  const { app, github, clock } = await buildGateway(t, (gh) => ({
    store,
    usersFile: tempFile(t, `alice:${ALICE}\nbob:${BOB}\n`),
    upstreamUserEndpoint: `${gh.origin}/user`,
    tokenCacheTtl: 0
  }))
  const editor = await registerClient(app, { client_name: 'Editor\u001b[2J', redirect_uris: [REDIRECT] })
  const chat = await registerClient(app, { client_name: 'Chat', redirect_uris: [REDIRECT] })
  github.user = { login: 'alice-gh', id: 1, orgs: [] }
  const aliceEditor = await connect(app, editor, 'alice', 'alice password')
  clock.advance(1000)
  const aliceChat = await connect(app, chat, 'alice', 'alice password')
  github.user = { login: 'bob-gh', id: 2, orgs: [] }
  const bobChat = await connect(app, chat, 'bob', 'bob password')
  await mcpStatus(app, aliceEditor)

  const all = await run(['list'], store)
  t.equal(all.code, 0)
  t.equal(all.stderr, '')
  const lines = all.stdout.trimEnd().split('\n')
  t.match(lines[0], /^GRANT +USER +CLIENT +SCOPES +UPSTREAM +CREATED +LAST USED$/)
  t.equal(lines.length, 4, 'a header and three grants')
  t.match(lines[1], new RegExp(`^gwg_\\S+ +alice +Editor\\?\\[2J \\(${editor.client_id}\\) +mcp repo read:org +alice-gh +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ +\\d{4}-`),
    'escape sequences in a client name are neutralised')
  t.match(lines[2], / alice +Chat .* alice-gh .*Z +-$/, 'never used')
  t.match(lines[3], / bob +Chat .* bob-gh /)

  const alice = await run(['list', '--user', 'alice'], store)
  t.equal(alice.stdout.trimEnd().split('\n').length, 3)
  t.notMatch(alice.stdout, 'bob')
  const json = await run(['list', '--user=bob', '--json'], store)
  const [bobs] = JSON.parse(json.stdout) as Array<Record<string, unknown>>
  t.match(bobs, { userId: 'bob', clientId: chat.client_id, clientName: 'Chat', scope: 'mcp', upstreamLogin: 'bob-gh' })
  t.same(JSON.parse((await run(['list', '--json', '--user', 'carol'], store)).stdout), [])
  t.equal((await run(['list', '--user', 'carol'], store)).stdout, 'No grants for carol.\n')

  await t.test('grants revoke <id>: that grant ends at once; an unknown id is exit 1', async (t) => {
    const id = /^(gwg_\S+) +alice +Chat/m.exec(all.stdout)?.[1] as string
    const revoked = await run(['revoke', id], store)
    t.equal(revoked.code, 0)
    t.equal(revoked.stdout, `Revoked ${id} (user alice, client Chat (${chat.client_id})).\n`)
    t.equal(await mcpStatus(app, aliceChat), 401)
    t.not(await mcpStatus(app, aliceEditor), 401, 'alice\'s other grant lives')
    const again = await run(['revoke', id], store)
    t.equal(again.code, 1)
    t.equal(again.stderr, `grants: no grant ${id} (unknown, expired or revoked already)\n`)
  })

  await t.test('grants revoke --user: every grant of the person ends', async (t) => {
    const revoked = await run(['revoke', '--user', 'bob'], store)
    t.equal(revoked.code, 0)
    t.equal(revoked.stdout, 'Revoked 1 grant of bob.\n')
    t.equal(await mcpStatus(app, bobChat), 401)
    t.equal((await run(['revoke', '--user', 'bob'], store)).stdout, 'Revoked 0 grants of bob.\n')
    t.equal((await run(['list'], store)).stdout.trimEnd().split('\n').length, 2, 'alice\'s editor is left')
  })

  const none = await run(['revoke', '--user', 'alice'], store)
  t.equal(none.stdout, 'Revoked 1 grant of alice.\n')
  t.equal((await run(['list'], store)).stdout, 'No grants.\n')
})

t.test('grants command: bad usage is exit 1 with the reason and the usage on stderr; --help is exit 0', async (t) => {
  const store = new MemoryStore()
  t.teardown(async () => { await store.close() })
  const cases: Array<[string[], RegExp]> = [
    [[], /^Usage: mcp-oauth-gateway grants list/],
    [['frobnicate'], /unknown command "frobnicate": list or revoke/],
    [['revoke'], /revoke takes a grant id or --user <name>, not both/],
    [['revoke', 'gwg_x', '--user', 'alice'], /not both/],
    [['list', '--user'], /--user needs a name/],
    [['list', '--user='], /--user needs a name/],
    [['list', '--user', 'a', '--user', 'b'], /--user given twice/]
  ]
  for (const [argv, message] of cases) {
    const res = await run(argv, store)
    t.equal(res.code, 1, argv.join(' '))
    t.match(res.stderr, message)
    t.equal(res.stdout, '')
  }
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: mcp-oauth-gateway grants list/)
})

t.test('grants command: a malformed index is read as empty, with a warning; a store that fails is exit 1', async (t) => {
  const memory = new MemoryStore()
  t.teardown(async () => { await memory.close() })
  await memory.set(indexKey.users, { version: 'x', members: [] }, 60_000)
  const malformed = await run(['list'], memory)
  t.equal(malformed.code, 0)
  t.equal(malformed.stdout, 'No grants.\n')
  t.equal(malformed.stderr, 'grants: malformed store record read as missing\n')
  const failing = delegatingStore(memory, { get: async () => { throw new StoreUnavailableError(new Error('down')) } })
  const down = await run(['revoke', 'gwg_x'], failing)
  t.equal(down.code, 1)
  t.equal(down.stderr, 'grants: the store is unavailable\n')
})

t.test('grants command: it needs the gateway\'s configuration, and a store other processes can reach', async (t) => {
  const memory = await run(['list', '--upstream-rs', 'https://mcp.example/mcp'])
  t.equal(memory.code, 1)
  t.match(memory.stderr, 'the store is memory (the default)')
  const bad = await run(['list', '--upstream-rs', 'https://mcp.example/mcp', '--store', 'redis://127.0.0.1:6379'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /grants: invalid configuration\n.*secret/s, 'a Redis store needs the secrets, as the gateway does')
  const help = await run(['list', '--help'])
  t.equal(help.code, 1)
  t.match(help.stderr, 'see `mcp-oauth-gateway grants --help`')
  const down = await run(['list', '--upstream-rs', 'https://mcp.example/mcp', '--store', 'redis://:pw-1234@127.0.0.1:1',
    '--secret', SECRET])
  t.equal(down.code, 1)
  t.match(down.stderr, 'grants: cannot open the store (the store is unavailable)')
  t.notMatch(down.stderr, 'pw-1234', 'the store URL\'s password is not repeated')
})

t.test('grants command, spawned, on Redis: lists and revokes what a running gateway issued, which stops at once', async (t) => {
  const prefix = testPrefix('grants-command')
  const { app } = await buildGateway(t, {
    store: SHARED_REDIS_URL,
    storePrefix: prefix,
    usersFile: tempFile(t, `alice:${ALICE}\n`),
    // A long cache: only the revocation message can make this gateway forget the token in time.
    tokenCacheTtl: 60_000
  })
  const client = await registerClient(app, { client_name: 'Editor', redirect_uris: [REDIRECT] })
  const token = await connect(app, client, 'alice', 'alice password')
  t.not(await mcpStatus(app, token), 401, 'valid, and cached by the gateway')
  const flags = ['--upstream-rs', 'https://mcp.example/mcp', '--store', SHARED_REDIS_URL, '--store-prefix', prefix,
    '--secret', SECRET]

  const listed = await spawnCommand(['list', ...flags])
  t.equal(listed.code, 0, listed.stderr)
  const id = /^(gwg_\S+) +alice +Editor /m.exec(listed.stdout)?.[1]
  t.ok(id, 'the grant is listed')
  const revoked = await spawnCommand(['revoke', id as string, ...flags])
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, `Revoked ${id as string} (user alice, client Editor (${client.client_id})).`)
  t.equal(await mcpStatus(app, token), 401, 'the running gateway refuses the token at once')
  const again = await spawnCommand(['revoke', id as string, ...flags])
  t.equal(again.code, 1)
  t.match(again.stderr, 'no grant')
  t.equal((await spawnCommand(['list', '--user', 'alice', ...flags])).stdout, 'No grants for alice.\n')
})
