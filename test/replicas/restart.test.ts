import t from 'tap'
import { request } from 'undici'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import {
  GatewayProcess, atUpstream, beginLogin, callEcho, exchange, finishCallback, freePort, gatewayFlags, loginFully,
  mcpClient, refresh, register, signIn, textOf, type Tokens
} from '../helpers/process.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue: "A restart test: register, log in, call a tool, kill the gateway process (SIGKILL), start it
 * again on the same Redis: the same client and tokens keep working, refresh works, and a login begun
 * before the restart finishes after it." The gateway runs as the real server.ts process; nothing of
 * it survives the kill but what is in Redis.
 */

const github = await startFakeGithub()
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
const prefix = testPrefix('restart')
t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, prefix) })

const port = await freePort()
const publicUrl = `http://127.0.0.1:${port}`
const flags = gatewayFlags({
  port,
  publicUrl,
  store: SHARED_REDIS_URL,
  storePrefix: prefix,
  secret: SECRET,
  github,
  upstreamRs: mcp.url
})

t.test('restart test: the same client, tokens, MCP session and half-done logins survive a SIGKILL of the gateway', async (t) => {
  const first = await GatewayProcess.start(t, port, flags)
  t.teardown(() => { if (t.passing() === false) t.comment(first.output) })

  // Before the restart: register, log in, call a tool.
  const client = await register(first.origin)
  const tokens = await loginFully(first.origin, publicUrl, client)
  const { client: sdk, transport } = await mcpClient(t, first.origin, tokens.access_token)
  t.equal(textOf(await sdk.callTool({ name: 'echo', arguments: { text: 'before' } })), 'before', 'restart test: a tool call before the restart')
  const sessionId = transport.sessionId
  t.type(sessionId, 'string', 'the upstream opened an MCP session')

  // A login begun before the restart, stopped at the login page (flow state in Redis, cookie in the browser)…
  const atLoginPage = await beginLogin(first.origin, publicUrl, client)
  // …and one signed in and approved, whose browser is at GitHub when the gateway dies.
  const atGithub = await beginLogin(first.origin, publicUrl, client)
  const githubUrl = await signIn(first.origin, atGithub)

  await first.kill()
  t.equal(first.child.signalCode, 'SIGKILL', 'restart test: the gateway process was killed with SIGKILL')
  await t.rejects(request(`${publicUrl}/healthz`), 'nothing listens on the port any more')

  const second = await GatewayProcess.start(t, port, flags)
  t.teardown(() => { if (t.passing() === false) t.comment(second.output) })
  t.not(second.child.pid, first.child.pid, 'a new process')

  await t.test('restart test: the same access token and MCP session keep working', async (t) => {
    t.equal(textOf(await sdk.callTool({ name: 'echo', arguments: { text: 'after' } })), 'after', 'the SDK client of before the restart, same session, same token')
    t.equal(transport.sessionId, sessionId, 'the session id did not change')
    const raw = await callEcho(second.origin, tokens.access_token, sessionId, 'raw after')
    t.equal(raw.status, 200, 'a raw tools/call with the pre-restart token and session id', { body: raw.body })
    t.equal(raw.text, 'raw after', 'echoed')
  })

  await t.test('restart test: the same client is still registered (a new login with it works)', async (t) => {
    const again = await loginFully(second.origin, publicUrl, client)
    t.match(again.access_token, /^gwa_/, 'tokens for the pre-restart client')
    const { client: fresh } = await mcpClient(t, second.origin, again.access_token)
    t.equal(textOf(await fresh.callTool({ name: 'echo', arguments: { text: 'new login' } })), 'new login', 'and they call tools')
  })

  await t.test('restart test: refresh works with the refresh token issued before the restart', async (t) => {
    const res = await refresh(second.origin, client, tokens.refresh_token)
    t.equal(res.status, 200, 'refresh on the restarted gateway', { body: res.body })
    const rotated = res.json<Tokens>()
    t.not(rotated.refresh_token, tokens.refresh_token, 'rotated')
    const call = await callEcho(second.origin, rotated.access_token, sessionId, 'refreshed')
    t.equal(call.status, 200, 'the refreshed access token is accepted', { body: call.body })
    t.equal(call.text, 'refreshed', 'the refreshed access token works on the same session')
    // Within --refresh-grace (30 s by default) the rotated token is answered again, from what Redis kept.
    const repeat = await refresh(second.origin, client, tokens.refresh_token)
    t.equal(repeat.status, 200, 'the pre-restart refresh token, sent again, gets its answer again')
    t.equal(repeat.json<Tokens>().refresh_token, rotated.refresh_token, 'the same pair, not a new one')
  })

  await t.test('restart test: a login begun before the restart (at the login page) finishes after it', async (t) => {
    const callback = await atUpstream(await signIn(second.origin, atLoginPage))
    const { code, redirect } = await finishCallback(second.origin, atLoginPage, callback)
    t.equal(redirect.searchParams.get('state'), 'replica-state', 'the client\'s state comes back')
    t.equal(redirect.searchParams.get('iss'), publicUrl, 'with the same issuer')
    const res = await exchange(second.origin, client, code, atLoginPage.verifier)
    t.equal(res.status, 200, 'its code is exchanged', { body: res.body })
    const { client: sdk2 } = await mcpClient(t, second.origin, res.json<Tokens>().access_token)
    t.equal(textOf(await sdk2.callTool({ name: 'echo', arguments: { text: 'finished 1' } })), 'finished 1', 'its access token calls tools')
  })

  await t.test('restart test: a login whose browser was at GitHub during the restart finishes after it', async (t) => {
    const callback = await atUpstream(githubUrl)
    const { code } = await finishCallback(second.origin, atGithub, callback)
    const res = await exchange(second.origin, client, code, atGithub.verifier)
    t.equal(res.status, 200, 'its code is exchanged', { body: res.body })
    const { client: sdk3 } = await mcpClient(t, second.origin, res.json<Tokens>().access_token)
    t.equal(textOf(await sdk3.callTool({ name: 'echo', arguments: { text: 'finished 2' } })), 'finished 2', 'its access token calls tools')
  })

  t.ok(second.alive, 'the restarted gateway is still running')
})
