import Fastify from 'fastify'
import t from 'tap'
import { StoreFullError, StoreUnavailableError } from '../../lib/stores/index.js'
import { oauthJsonErrorHandler } from '../../routes/oauth-json-errors.js'
import { WARN_EVERY_MS, classifyRequestError, warnOncePerMinute } from '../../routes/request-errors.js'

t.test('issue 15 finding 2: one mapping from error to status, shared by the JSON and HTML handlers', async (t) => {
  t.match(classifyRequestError({ statusCode: 429 }), { kind: 'rate_limited', status: 429, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }), { kind: 'body_too_large', status: 413, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), { kind: 'unsupported_media_type', status: 415, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), { kind: 'malformed', status: 400, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 400, validation: [] }), { kind: 'malformed', status: 400 })
  t.match(classifyRequestError({ statusCode: 404 }), { kind: 'client_error', status: 404, logLevel: 'info' })
  t.match(classifyRequestError(new StoreUnavailableError(new Error('down'))), { kind: 'store_unavailable', status: 503, retryAfterSeconds: 5 })
  t.match(classifyRequestError(new StoreFullError('flow')), { kind: 'store_full', status: 503, retryAfterSeconds: 5, logLevel: 'warn' })
  t.match(classifyRequestError(new StoreFullError('flow')), { kind: 'store_full', logLevel: 'info' }, 'the same bound again within the minute')
  t.match(classifyRequestError(new TypeError('x is undefined')), { kind: 'bug', status: 500, logLevel: 'error' }, 'no status: a gateway bug')
  t.match(classifyRequestError({ statusCode: 502 }), { kind: 'bug', status: 500 }, 'a 5xx thrown on the way is the gateway\'s too')
  t.match(classifyRequestError('a string'), { kind: 'bug', status: 500 })
})

t.test('issue 15 finding 2: the JSON handler words each class in RFC 6749 terms, and logs a stack only for a bug', async (t) => {
  const logged: Array<{ level: string, obj: Record<string, unknown> }> = []
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (scope) => {
    scope.setErrorHandler(oauthJsonErrorHandler())
    scope.addHook('onRequest', async (req) => {
      for (const level of ['info', 'warn', 'error'] as const) {
        req.log[level] = ((obj: Record<string, unknown>) => { logged.push({ level, obj }) }) as never
      }
    })
    scope.get('/bug', async () => { throw new TypeError('x is undefined') })
    scope.get('/down', async () => { throw new StoreUnavailableError(new Error('ECONNREFUSED')) })
    scope.get('/gone', async () => { throw Object.assign(new Error('gone'), { statusCode: 410 }) })
  })
  const bug = await app.inject('/bug')
  t.equal(bug.statusCode, 500)
  t.same(bug.json(), { error: 'server_error', error_description: 'internal error' })
  t.match(logged.pop(), { level: 'error', obj: { err: { message: 'x is undefined' } } })
  const down = await app.inject('/down')
  t.equal(down.statusCode, 503)
  t.equal(down.headers['retry-after'], '5')
  const downLine = logged.pop()
  t.match(downLine, { level: 'error', obj: { oauthError: 'temporarily_unavailable' } })
  t.notOk('err' in (downLine?.obj ?? {}), 'no stack for a store that is down')
  const gone = await app.inject('/gone')
  t.equal(gone.statusCode, 410)
  t.same(gone.json(), { error: 'invalid_request', error_description: 'malformed request' })
  t.match(logged.pop(), { level: 'info', obj: { statusCode: 410 } })
})

t.test('issue 15: a bound that keeps refusing warns once a minute per kind, so a flood cannot flood the log at warn', async (t) => {
  t.equal(warnOncePerMinute('test-kind', 1_000), 'warn')
  t.equal(warnOncePerMinute('test-kind', 1_000 + WARN_EVERY_MS - 1), 'info')
  t.equal(warnOncePerMinute('other-kind', 1_000), 'warn', 'each kind has its own minute')
  t.equal(warnOncePerMinute('test-kind', 1_000 + WARN_EVERY_MS), 'warn')
})
