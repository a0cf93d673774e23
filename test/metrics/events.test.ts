import t from 'tap'
import { GatewayEvents, type EventLogger } from '../../lib/events.js'

/*
 * lib/events.ts alone: one log line per OAuth event (info, warn for reuse and replay), through the
 * logger given with the event or else the bus's own, telemetry never logged, listeners isolated.
 */

interface Line { level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string }

function recorder (): EventLogger & { lines: Line[] } {
  const lines: Line[] = []
  const at = (level: Line['level']) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, info: at('info'), warn: at('warn'), error: at('error') }
}

t.test('each OAuth event is one line with its ids, at info; reuse and replay at warn', async (t) => {
  const fallback = recorder()
  const request = recorder()
  const events = new GatewayEvents({ log: fallback })
  events.emit('client_registered', { clientId: 'c1', authMethod: 'none' }, request)
  events.emit('login_failed', { clientId: 'c1' }, request)
  events.emit('login_succeeded', { clientId: 'c1', userId: 'alice' }, request)
  events.emit('consent_given', { clientId: 'c1', userId: 'alice', remembered: true }, request)
  events.emit('consent_denied', { clientId: 'c1', userId: 'alice' }, request)
  events.emit('code_issued', { clientId: 'c1', userId: 'alice' }, request)
  events.emit('tokens_issued', { clientId: 'c1', grantId: 'g1', grantType: 'authorization_code' }, request)
  events.emit('tokens_issued', { clientId: 'c1', grantId: 'g1', grantType: 'refresh_token' }, request)
  events.emit('refresh_reuse_detected', { clientId: 'c1', grantId: 'g1' }, request)
  events.emit('code_replay_detected', { clientId: 'c1', grantId: 'g2' }, request)
  events.emit('grant_revoked', { clientId: 'c1', grantId: 'g1', reason: 'refresh_reuse' }, request)
  t.same(request.lines.map((l) => [l.level, l.msg]), [
    ['info', 'client registered'],
    ['info', 'login failed'],
    ['info', 'login succeeded'],
    ['info', 'consent given'],
    ['info', 'consent denied'],
    ['info', 'authorization code issued'],
    ['info', 'tokens issued'],
    ['info', 'tokens refreshed'],
    ['warn', 'refresh token reuse detected'],
    ['warn', 'authorization code replay detected'],
    ['info', 'grant revoked']
  ])
  t.same(request.lines[3]?.obj, { event: 'consent_given', clientId: 'c1', userId: 'alice', remembered: true })
  t.same(request.lines[6]?.obj, { event: 'tokens_issued', clientId: 'c1', grantId: 'g1', grantType: 'authorization_code' })
  t.same(request.lines[10]?.obj, { event: 'grant_revoked', clientId: 'c1', grantId: 'g1', reason: 'refresh_reuse' })
  t.same(fallback.lines, [], 'nothing went to the fallback logger')
})

t.test('without a request logger the bus logs through its own; without one at all, nowhere', async (t) => {
  const fallback = recorder()
  new GatewayEvents({ log: fallback }).emit('grant_revoked', { clientId: 'c', grantId: 'g', reason: 'upstream_refused' })
  t.same(fallback.lines.map((l) => l.msg), ['grant revoked'])
  t.doesNotThrow(() => { new GatewayEvents().emit('login_failed', { clientId: 'c' }) })
})

t.test('upstream errors and proxy telemetry are counted, not logged (their sites log them with the cause)', async (t) => {
  const log = recorder()
  const events = new GatewayEvents({ log })
  const seen: string[] = []
  events.on('upstream_error', (e) => { seen.push(e.kind) })
  events.on('proxy_response', (e) => { seen.push(`${e.method} ${e.seconds}`) })
  events.on('stream_opened', () => { seen.push('opened') })
  events.on('stream_closed', () => { seen.push('closed') })
  events.emit('upstream_error', { kind: 'proxy_504' }, log)
  events.emit('proxy_response', { method: 'POST', seconds: 0.25 }, log)
  events.emit('stream_opened', {})
  events.emit('stream_closed', {})
  t.same(seen, ['proxy_504', 'POST 0.25', 'opened', 'closed'])
  t.same(log.lines, [])
})

t.test('listeners: unsubscribe works, and a listener that throws neither breaks the emitter nor the others', async (t) => {
  const log = recorder()
  const events = new GatewayEvents({ log })
  const seen: string[] = []
  events.on('code_issued', () => { throw new Error('counter broke') })
  const notAnError: unknown = 'not an error'
  events.on('code_issued', () => { throw notAnError })
  const off = events.on('code_issued', (e) => { seen.push(e.clientId) })
  events.emit('code_issued', { clientId: 'a', userId: 'alice' })
  off()
  events.emit('code_issued', { clientId: 'b', userId: 'alice' })
  t.same(seen, ['a'], 'the third listener ran, then was gone')
  t.same(log.lines.filter((l) => l.level === 'error').map((l) => [l.msg, l.obj]), [
    ['event listener failed', { event: 'code_issued', err: { message: 'counter broke' } }],
    ['event listener failed', { event: 'code_issued', err: { message: 'not an error' } }],
    ['event listener failed', { event: 'code_issued', err: { message: 'counter broke' } }],
    ['event listener failed', { event: 'code_issued', err: { message: 'not an error' } }]
  ])
})
