import t from 'tap'
import { compileCors, requestedHeaderNames, type CorsPolicy } from '../../lib/cors.js'

const PUBLIC: CorsPolicy = { origins: '*', methods: ['GET', 'POST'], allowHeaders: ['Authorization', 'Content-Type'], exposeHeaders: ['WWW-Authenticate'], maxAgeSeconds: 600 }
const MCP: CorsPolicy = { origins: ['https://inspector.example'], methods: ['GET', 'POST', 'DELETE'], allowHeaders: 'requested', exposeHeaders: ['Mcp-Session-Id', 'WWW-Authenticate'], maxAgeSeconds: 60 }

t.test('Fetch §3.2.3: a public policy answers every response alike, Origin or not, never with credentials', async (t) => {
  const cors = compileCors(PUBLIC)
  const expected = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'WWW-Authenticate' }
  t.strictSame(cors.actual('https://any.example'), expected)
  t.strictSame(cors.actual(undefined), expected, 'a cached copy fetched without Origin must serve browsers too')
  t.strictSame(cors.actual('null'), expected, 'opaque origins (sandboxed frames, file:) too: nothing here is secret')
})

t.test('Fetch §3.2.2: a preflight against a public policy lists the methods, headers and max age', async (t) => {
  const cors = compileCors(PUBLIC)
  t.strictSame(cors.preflight('https://any.example', 'x-other'), {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET, POST',
    'access-control-max-age': '600',
    'access-control-allow-headers': 'Authorization, Content-Type'
  }, 'the fixed list, whatever was asked')
  t.equal(cors.preflight(undefined, undefined), undefined, 'no Origin: not a CORS preflight')
})

t.test('MCP transport (checklist §1.8 item 49): a listed origin is reflected, with Vary: Origin', async (t) => {
  const cors = compileCors(MCP)
  t.strictSame(cors.actual('https://inspector.example'), {
    'access-control-allow-origin': 'https://inspector.example',
    'access-control-expose-headers': 'Mcp-Session-Id, WWW-Authenticate',
    vary: 'Origin'
  })
  t.equal(cors.actual(undefined), undefined, 'no Origin (every non-browser client): nothing to add')
})

t.test('MCP transport: an origin not on the list gets no Access-Control-Allow-Origin, on requests and preflights', async (t) => {
  const cors = compileCors(MCP)
  for (const origin of ['https://evil.example', 'https://inspector.example.evil', 'https://INSPECTOR.example', 'null', '*']) {
    t.strictSame(cors.actual(origin), { vary: 'Origin' }, origin)
    t.strictSame(cors.preflight(origin, 'authorization'), { vary: 'Origin, Access-Control-Request-Headers' }, origin)
  }
})

t.test('MCP transport: a preflight allows the requested header names (Mcp-Param-* cannot be listed)', async (t) => {
  const cors = compileCors(MCP)
  t.strictSame(cors.preflight('https://inspector.example', 'Authorization, Mcp-Session-Id,mcp-param-owner'), {
    'access-control-allow-origin': 'https://inspector.example',
    'access-control-allow-methods': 'GET, POST, DELETE',
    'access-control-max-age': '60',
    'access-control-allow-headers': 'authorization, mcp-session-id, mcp-param-owner',
    vary: 'Origin, Access-Control-Request-Headers'
  })
  t.equal(cors.preflight('https://inspector.example', undefined)?.['access-control-allow-headers'], '', 'nothing asked, nothing allowed')
})

t.test('RFC 9110 §5.1: only field names are echoed back from Access-Control-Request-Headers', async (t) => {
  t.strictSame(requestedHeaderNames(undefined), [])
  t.strictSame(requestedHeaderNames(''), [])
  t.strictSame(requestedHeaderNames(' Content-Type ,, X-A '), ['content-type', 'x-a'])
  t.strictSame(requestedHeaderNames('a b, c"d, e:f, ok, x\u00e9, (y)'), ['ok'], 'spaces, quotes, colons, non-ASCII, parentheses are not names')
})
