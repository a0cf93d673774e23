import t from 'tap'
import { checkRedirectUri, isRedirectUriPattern, isLoopbackRedirectUri, matchRedirectUri, redirectHost } from '../../lib/redirect-uri.js'

t.test('RFC 7591 §2 / OAuth 2.1 §2.3.1 checkRedirectUri accepts https, loopback http and private-use schemes (landscape §4.1)', async (t) => {
  for (const uri of [
    'https://a.example/cb',
    'https://a.example:8443/cb?x=1',
    'https://vscode.dev/redirect',
    'https://www.cursor.com/agents/mcp/oauth/callback',
    'https://claude.ai/api/mcp/auth_callback',
    'http://127.0.0.1:33418/',
    'http://127.0.0.1/callback',
    'http://localhost:8787/callback',
    'http://localhost/callback',
    'http://[::1]:9000/cb',
    'http://127.0.0.1:65535/cb',
    'http://127.0.0.1:1/cb',
    'cursor://anysphere.cursor-mcp/oauth/callback',
    'vscode://vscode.github-authentication/did-authenticate',
    'com.example.app:/oauth2redirect'
  ]) {
    t.strictSame(checkRedirectUri(uri), { ok: true }, uri)
  }
})

t.test('OAuth 2.1 §2.3 / §7.12 checkRedirectUri refuses dangerous, relative, fragment, userinfo and non-loopback http URIs', async (t) => {
  const cases: Array<[string, string]> = [
    ['javascript:alert(1)', 'the javascript: scheme is not allowed'],
    ['data:text/html,x', 'the data: scheme is not allowed'],
    ['vbscript:msgbox(1)', 'the vbscript: scheme is not allowed'],
    ['file:///etc/passwd', 'the file: scheme is not allowed'],
    ['blob:https://a.example/x', 'the blob: scheme is not allowed'],
    ['about:blank', 'the about: scheme is not allowed'],
    ['wss://a.example/cb', 'the wss: scheme is not allowed'],
    ['JAVASCRIPT:alert(1)', 'redirect URIs must be absolute, with a lowercase scheme'],
    [' javascript:alert(1)', 'redirect URIs must be absolute, with a lowercase scheme'],
    ['HTTPS://a.example/cb', 'redirect URIs must be absolute, with a lowercase scheme'],
    ['/cb', 'redirect URIs must be absolute, with a lowercase scheme'],
    ['//a.example/cb', 'redirect URIs must be absolute, with a lowercase scheme'],
    ['', 'redirect URIs must be absolute, with a lowercase scheme'],
    ['https://a.example/cb#frag', 'redirect URIs must not contain a fragment'],
    ['https://a.example/cb#', 'redirect URIs must not contain a fragment'],
    ['http://127.0.0.1:8080/cb#x', 'redirect URIs must not contain a fragment'],
    ['https://user:pw@a.example/cb', 'redirect URIs must not contain user information'],
    ['https://a.example@evil.example/cb', 'redirect URIs must not contain user information'],
    ['cursor://user@anysphere.cursor-mcp/cb', 'redirect URIs must not contain user information'],
    ['https://a.example:99999/cb', 'redirect URIs must be valid URLs'],
    ['https://', 'redirect URIs must be valid URLs'],
    ['http://evil.example/cb', 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'],
    ['http://localhost.evil.example/cb', 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'],
    ['http://127.0.0.1.nip.io/cb', 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'],
    ['http://LOCALHOST:8080/cb', 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'],
    ['http://127.0.0.1:0/cb', 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'],
    ['http://127.0.0.1:65536/cb', 'redirect URIs must be valid URLs']
  ]
  for (const [uri, reason] of cases) {
    t.strictSame(checkRedirectUri(uri), { ok: false, reason }, JSON.stringify(uri))
  }
})

t.test('RFC 8252 §7.3 / §8.3 isLoopbackRedirectUri: 127.0.0.1, [::1] and localhost over http, valid ports only', async (t) => {
  const yes = [
    'http://127.0.0.1', 'http://127.0.0.1/', 'http://127.0.0.1:1/cb', 'http://127.0.0.1:65535/cb',
    'http://[::1]/cb', 'http://[::1]:33418/', 'http://localhost', 'http://localhost:8787/callback',
    'http://localhost?x=1', 'http://localhost:80/cb?a=b'
  ]
  const no = [
    'https://127.0.0.1/cb', 'http://127.0.0.2/cb', 'http://[::2]/cb', 'http://LOCALHOST/cb', 'HTTP://127.0.0.1/cb',
    'http://localhost.evil.example/cb', 'http://localhost@evil.example/cb', 'http://localhost:8080@evil.example/cb',
    'http://127.0.0.1:0/cb', 'http://127.0.0.1:65536/cb', 'http://127.0.0.1:123456/cb', 'http://127.0.0.1:/cb',
    'http://127.0.0.1/cb#frag', 'http://0.0.0.0/cb', 'http://[0:0:0:0:0:0:0:1]/cb', 'cursor://localhost/cb'
  ]
  for (const uri of yes) t.equal(isLoopbackRedirectUri(uri), true, uri)
  for (const uri of no) t.equal(isLoopbackRedirectUri(uri), false, uri)
})

t.test('OAuth 2.1 §4.1.1 / checklist item 13 matchRedirectUri: exact string match returns the requested URI', async (t) => {
  const registered = ['https://a.example/cb', 'cursor://anysphere.cursor-mcp/oauth/callback', 'vscode://vscode.github-authentication/did-authenticate']
  for (const uri of registered) t.equal(matchRedirectUri(registered, uri), uri, uri)
  t.equal(matchRedirectUri([], 'https://a.example/cb'), undefined, 'nothing registered')
})

t.test('RFC 8252 §7.3 / landscape §4.1 matchRedirectUri: any port on a loopback registration, with or without a registered port', async (t) => {
  const cases: Array<[string, string]> = [
    ['http://127.0.0.1:33418/', 'http://127.0.0.1:51234/'],
    ['http://127.0.0.1:33418/', 'http://127.0.0.1/'],
    ['http://127.0.0.1/callback', 'http://127.0.0.1:5555/callback'],
    ['http://127.0.0.1/callback', 'http://127.0.0.1:65535/callback'],
    ['http://[::1]:9000/cb', 'http://[::1]:1/cb'],
    ['http://[::1]/cb', 'http://[::1]:49152/cb'],
    ['http://localhost:8787/callback', 'http://localhost:3000/callback'],
    ['http://localhost/callback', 'http://localhost:61000/callback'],
    ['http://localhost:8787/callback?x=1', 'http://localhost:1/callback?x=1'],
    ['http://127.0.0.1', 'http://127.0.0.1:8080']
  ]
  for (const [registered, requested] of cases) {
    t.equal(matchRedirectUri([registered], requested), registered, `${requested} matches ${registered}`)
  }
  t.equal(matchRedirectUri(['https://a.example/cb', 'http://localhost/callback', 'http://127.0.0.1/callback'], 'http://127.0.0.1:9999/callback'), 'http://127.0.0.1/callback', 'the registered URI it matched, among several')
})

t.test('RFC 8252 §7.3 / checklist item 13 matchRedirectUri: loopback host, path and query must still match exactly', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['http://localhost:8787/callback', 'http://127.0.0.1:8787/callback', 'localhost is not 127.0.0.1'],
    ['http://127.0.0.1:8787/callback', 'http://localhost:8787/callback', '127.0.0.1 is not localhost'],
    ['http://127.0.0.1/cb', 'http://[::1]/cb', '127.0.0.1 is not [::1]'],
    ['http://[::1]/cb', 'http://localhost/cb', '[::1] is not localhost'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:8080/cb/', 'trailing slash'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:9090/cb/extra', 'path prefix'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:9090/CB', 'path case'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:9090/%63b', 'percent-encoded path'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:9090/cb?x=1', 'query added'],
    ['http://127.0.0.1:8080/cb?x=1', 'http://127.0.0.1:9090/cb?x=2', 'query changed'],
    ['http://127.0.0.1:8080/cb?x=1', 'http://127.0.0.1:9090/cb', 'query dropped'],
    ['http://127.0.0.1:8080/', 'http://127.0.0.1:9090', 'empty path vs /'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:9090/cb#frag', 'fragment'],
    ['http://127.0.0.1:8080/cb', 'https://127.0.0.1:9090/cb', 'https is not loopback http'],
    ['http://127.0.0.1:8080/cb', 'HTTP://127.0.0.1:9090/cb', 'scheme case'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:0/cb', 'port 0'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:65536/cb', 'port 65536'],
    ['http://127.0.0.1:8080/cb', 'http://127.0.0.1:080800/cb', 'six-digit port'],
    ['http://127.0.0.1/cb', 'http://127.0.0.1:8080@evil.example/cb', 'userinfo trick'],
    ['http://localhost/cb', 'http://localhost.evil.example/cb', 'host suffix'],
    ['https://a.example/cb', 'http://127.0.0.1:8080/cb', 'a non-loopback registration gets no port leniency']
  ]
  for (const [registered, requested, why] of cases) {
    t.equal(matchRedirectUri([registered], requested), undefined, `${why}: ${requested} vs ${registered}`)
  }
})

t.test('OAuth 2.1 §4.1.1 / BCP §4.1.3 matchRedirectUri: variants of an https registration are refused', async (t) => {
  const registered = ['https://a.example/cb']
  for (const [requested, why] of [
    ['https://a.example/cb/extra', 'prefix'],
    ['https://a.example/c', 'truncated'],
    ['https://a.example/cbx', 'suffix'],
    ['https://a.example/cb/', 'trailing slash'],
    ['https://a.example/cb?x=1', 'query added'],
    ['https://a.example/cb#frag', 'fragment'],
    ['https://A.example/cb', 'host case'],
    ['https://a.EXAMPLE/cb', 'host case'],
    ['HTTPS://a.example/cb', 'scheme case'],
    ['Https://a.example/cb', 'scheme case'],
    ['https://a.example/CB', 'path case'],
    ['https://a.example/%63b', 'percent-encoded path'],
    ['https://a.example/./cb', 'dot segment'],
    ['https://a.example/x/../cb', 'dot-dot segment'],
    ['https://a.example:443/cb', 'default port made explicit'],
    ['https://a.example:8443/cb', 'port added'],
    ['https://a.example@evil.example/cb', 'userinfo'],
    ['https://evil.example@a.example/cb', 'userinfo before the host'],
    ['https://a.example.evil.example/cb', 'host suffix'],
    ['https://a.example./cb', 'trailing dot'],
    ['http://a.example/cb', 'scheme downgrade'],
    [' https://a.example/cb', 'leading space'],
    ['https://a.example/cb ', 'trailing space'],
    ['', 'empty']
  ] as const) {
    t.equal(matchRedirectUri(registered, requested), undefined, `${why}: ${JSON.stringify(requested)}`)
  }
})

t.test('RFC 8252 §7.1 matchRedirectUri: private-use schemes (cursor://, vscode://) match exactly, no variants', async (t) => {
  const registered = ['cursor://anysphere.cursor-mcp/oauth/callback', 'vscode://vscode.github-authentication/did-authenticate']
  for (const requested of [
    'cursor://anysphere.cursor-mcp/oauth/callback/',
    'cursor://anysphere.cursor-mcp/oauth/callback?x=1',
    'cursor://anysphere.cursor-mcp:1234/oauth/callback',
    'Cursor://anysphere.cursor-mcp/oauth/callback',
    'cursor://evil/oauth/callback',
    'vscode://vscode.github-authentication/did-authenticate#x',
    'vscode://vscode.github-authentication/did-authenticat',
    'vscode-insiders://vscode.github-authentication/did-authenticate'
  ]) {
    t.equal(matchRedirectUri(registered, requested), undefined, requested)
  }
})

t.test('consent page (checklist §1.7) redirectHost: the host (with port), or the scheme of a native app', async (t) => {
  t.equal(redirectHost('https://a.example/cb'), 'a.example')
  t.equal(redirectHost('https://a.example:8443/cb'), 'a.example:8443')
  t.equal(redirectHost('http://127.0.0.1:33418/'), '127.0.0.1:33418')
  t.equal(redirectHost('http://[::1]:9000/cb'), '[::1]:9000')
  t.equal(redirectHost('cursor://anysphere.cursor-mcp/oauth/callback'), 'anysphere.cursor-mcp')
  t.equal(redirectHost('com.example.app:/oauth2redirect'), 'com.example.app')
  t.equal(redirectHost('not a url'), 'not a url', 'unparseable input is returned as is')
})

t.test('RFC 3986 §2 / OAuth 2.1 §2.3 checkRedirectUri refuses whitespace, control and non-ASCII characters', async (t) => {
  for (const uri of ['https://a.example/c b', 'https://a.example/c\nb', 'https://a.example/c\tb', 'https://a.example/cb\r\nSet-Cookie: x=1', 'https://a.example/cb\u20ac', 'http://127.0.0.1:8080/c b']) {
    t.equal(checkRedirectUri(uri).ok, false, JSON.stringify(uri))
  }
})

t.test('--redirect-uri-allow patterns: loopback, an exact URI, or a prefix ending in * that reaches past the host', async (t) => {
  for (const pattern of ['loopback', 'https://claude.ai/api/mcp/auth_callback', 'https://claude.ai/*',
    'https://app.example/cb?*', 'cursor://*', 'http://127.0.0.1/*', 'vscode://vscode.github-authentication/*']) {
    t.ok(isRedirectUriPattern(pattern), pattern)
  }
  for (const pattern of ['https://claude.ai*', 'https://*.claude.ai/*', 'https://claude.ai/*/cb', '*',
    'javascript:*', 'http://evil.example/*', 'https://claude.ai/#*', 'relative/*', 'LOOPBACK', '']) {
    t.notOk(isRedirectUriPattern(pattern), JSON.stringify(pattern))
  }
})

t.test('--redirect-uri-allow: checkRedirectUri allows only URIs a pattern matches, after the usual rules', async (t) => {
  const allow = ['loopback', 'https://claude.ai/api/*', 'cursor://anysphere.cursor-mcp/oauth/callback']
  for (const uri of ['http://127.0.0.1:33418/callback', 'http://localhost/callback', 'http://[::1]:9/cb',
    'https://claude.ai/api/mcp/auth_callback', 'cursor://anysphere.cursor-mcp/oauth/callback']) {
    t.same(checkRedirectUri(uri, allow), { ok: true }, uri)
  }
  for (const uri of ['https://claude.ai/other', 'https://claude.ai.evil.example/api/x',
    'cursor://anysphere.cursor-mcp/oauth/callback2', 'vscode://x/cb']) {
    const verdict = checkRedirectUri(uri, allow)
    t.equal(verdict.ok, false, uri)
    t.match(verdict, { reason: /operator allows/ })
  }
  // The usual rules come first: a pattern cannot allow what is never allowed.
  t.match(checkRedirectUri('javascript:alert(1)', ['javascript:*']), { ok: false, reason: /javascript/ })
  t.same(checkRedirectUri('https://any.example/cb', []), { ok: true }, 'no patterns: no restriction')
})
