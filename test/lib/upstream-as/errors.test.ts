import t from 'tap'
import { UpstreamError } from '../../../lib/upstream-as/errors.js'

t.test('UpstreamError', async (t) => {
  const plain = new UpstreamError('timeout', 'slow')
  t.equal(plain.name, 'UpstreamError')
  t.ok(plain instanceof Error)
  t.equal(plain.oauthError, undefined)
  t.equal(plain.status, undefined)
  const cause = new Error('root')
  t.equal(new UpstreamError('unreachable', 'x', { cause }).cause, cause)
})
