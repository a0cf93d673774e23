import t from 'tap'
import { StoreFullError, StoreUnavailableError } from '../../lib/stores/index.js'
import { classifyRequestError } from '../../routes/request-errors.js'

t.test('issue 15 finding 2: one mapping from error to status, shared by the JSON and HTML handlers', async (t) => {
  t.match(classifyRequestError({ statusCode: 429 }), { kind: 'rate_limited', status: 429, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }), { kind: 'body_too_large', status: 413, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), { kind: 'unsupported_media_type', status: 415, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), { kind: 'malformed', status: 400, logLevel: 'info' })
  t.match(classifyRequestError({ statusCode: 400, validation: [] }), { kind: 'malformed', status: 400 })
  t.match(classifyRequestError({ statusCode: 404 }), { kind: 'client_error', status: 404, logLevel: 'info' })
  t.match(classifyRequestError(new StoreUnavailableError(new Error('down'))), { kind: 'store_unavailable', status: 503, retryAfterSeconds: 5 })
  t.match(classifyRequestError(new StoreFullError('flow')), { kind: 'store_full', status: 503, retryAfterSeconds: 5, logLevel: 'warn' })
  t.match(classifyRequestError(new TypeError('x is undefined')), { kind: 'bug', status: 500, logLevel: 'error' }, 'no status: a gateway bug')
  t.match(classifyRequestError({ statusCode: 502 }), { kind: 'bug', status: 500 }, 'a 5xx thrown on the way is the gateway\'s too')
  t.match(classifyRequestError('a string'), { kind: 'bug', status: 500 })
})
