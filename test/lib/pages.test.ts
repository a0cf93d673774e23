import t from 'tap'
import { consentPage, errorPage, loginPage, type FlowView } from '../../routes/authorize/pages.js'

const SCRIPT = '<script>alert(1)</script>'
const IMG = '"><img src=x onerror=alert(1)>'
const SCRIPT_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;'
const IMG_ESCAPED = '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'

const flow: FlowView = {
  clientName: 'Claude Code',
  clientId: 'c_123',
  clientHost: undefined,
  redirectUri: 'http://127.0.0.1:33418/callback',
  redirectHost: '127.0.0.1',
  localhostOnly: true,
  upstreamName: 'github.com',
  upstreamScopes: ['repo', 'read:org']
}

const evilFlow: FlowView = {
  clientName: SCRIPT + IMG,
  clientId: SCRIPT + IMG,
  clientHost: SCRIPT + IMG,
  redirectUri: 'https://evil.example/cb?x=' + SCRIPT + IMG,
  redirectHost: SCRIPT + IMG,
  localhostOnly: true,
  upstreamName: SCRIPT + IMG,
  upstreamScopes: [SCRIPT, IMG]
}

/** The assertions the helpers use, on the root test or any subtest. */
type Asserts = Pick<typeof t, 'ok' | 'equal' | 'match' | 'notMatch'>

const ALLOWED_TAGS = new Set(['!doctype', 'html', 'head', 'meta', 'title', 'link', 'style', 'body', 'main', 'h1', 'h2',
  'p', 'strong', 'span', 'br', 'code', 'dl', 'dt', 'dd', 'ul', 'li', 'form', 'label', 'input', 'div', 'button'])

/** Every element the page contains must be one the templates write: an injected one would show up here. */
function assertInert (t: Asserts, page: string) {
  for (const m of page.matchAll(/<\/?([a-z!][a-z0-9]*)/gi)) {
    t.ok(ALLOWED_TAGS.has((m[1] ?? '').toLowerCase()), `tag <${m[1]}> is one the template writes`)
  }
  t.notMatch(page, /<script/i)
  t.notMatch(page, /<img/i)
  t.notMatch(page, IMG, 'no attribute was closed early')
  t.match(page, SCRIPT_ESCAPED)
  t.match(page, IMG_ESCAPED)
}

/** Each `<label for>` names an element id that exists exactly once. */
function assertLabelled (t: Asserts, page: string) {
  const fors = [...page.matchAll(/<label for="([^"]+)"/g)].map((m) => m[1])
  t.ok(fors.length > 0)
  for (const id of fors) t.equal(page.split(`id="${id}"`).length - 1, 1, `label for=${id} has its control`)
}

function countOf (page: string, s: string): number {
  return page.split(s).length - 1
}

function tag (page: string, pattern: RegExp): string {
  return page.match(pattern)?.[0] ?? ''
}

const base = { action: '/authorize/login', flowId: 'f_1', csrf: 'k_1', passwords: true }

t.test('login page', async (t) => {
  const page = loginPage({ ...base, flow })
  t.match(page, '<h1>Sign in to the MCP gateway</h1>')
  t.equal(countOf(page, '<h1'), 1, 'one h1')
  t.match(page, '<strong>Claude Code</strong> wants to connect')
  t.match(page, '<span class="host">127.0.0.1</span>', 'the redirect host')
  t.match(page, '<form method="post" action="/authorize/login">')
  t.match(page, '<input type="hidden" name="flow" value="f_1">')
  t.match(page, '<input type="hidden" name="csrf" value="k_1">')
  const user = tag(page, /<input type="text" id="username"[^>]*>/)
  t.match(user, 'name="username"')
  t.match(user, 'value=""', 'the username is empty, never prefilled')
  t.match(user, 'autocomplete="username"')
  t.match(user, ' autofocus')
  const pass = tag(page, /<input type="password" id="password"[^>]*>/)
  t.match(pass, 'name="password"')
  t.match(pass, 'autocomplete="current-password"')
  t.notMatch(pass, 'value=', 'the password input never has a value')
  t.notMatch(pass, 'autofocus')
  t.match(page, '<button type="submit">Sign in</button>')
  t.notMatch(page, 'role="alert"', 'no error, no alert')
  t.notMatch(page, 'aria-invalid')
  t.ok(page.indexOf('id="username"') < page.indexOf('id="password"') &&
    page.indexOf('id="password"') < page.indexOf('<button'), 'focus order: username, password, submit')
  assertLabelled(t, page)
})

t.test('login page after a failed attempt', async (t) => {
  const page = loginPage({ ...base, flow, error: 'Wrong username or password.', username: 'alice' })
  t.match(page, '<p class="note error" role="alert" id="login-error">Wrong username or password.</p>')
  const user = tag(page, /<input type="text" id="username"[^>]*>/)
  t.match(user, 'value="alice"', 'what the user typed comes back')
  t.match(user, 'aria-describedby="login-error" aria-invalid="true"')
  t.notMatch(user, 'autofocus')
  const pass = tag(page, /<input type="password" id="password"[^>]*>/)
  t.notMatch(pass, 'value=')
  t.match(pass, 'aria-describedby="login-error"')
  t.match(pass, ' autofocus', 'the password is what is left to type')
  t.ok(page.indexOf('role="alert"') < page.indexOf('<form'), 'the error comes before the form')

  const empty = loginPage({ ...base, flow, error: '' })
  t.notMatch(empty, 'role="alert"', 'an empty error shows nothing')
})

t.test('login page never carries a password, whatever it is given', async (t) => {
  const secret = 'hunter2-s3cret'
  // The signature has no password field; even an object that smuggles one in must not reach the page.
  const args = { ...base, flow, username: 'bob', password: secret }
  const page = loginPage(args)
  t.notMatch(page, secret)
  t.equal(countOf(page, 'value='), 3, 'only flow, csrf and username have values')
})

t.test('login page escapes everything it is given', async (t) => {
  const page = loginPage({
    action: '/x' + IMG,
    flowId: SCRIPT + IMG,
    csrf: SCRIPT + IMG,
    flow: evilFlow,
    passwords: true,
    error: SCRIPT + IMG,
    username: SCRIPT + IMG
  })
  assertInert(t, page)
  t.match(page, `<input type="hidden" name="flow" value="${SCRIPT_ESCAPED}${IMG_ESCAPED}">`)
  t.match(page, `value="${SCRIPT_ESCAPED}${IMG_ESCAPED}" autocomplete="username"`)
})

t.test('consent page', async (t) => {
  const page = consentPage({ ...base, action: '/authorize/consent', flow, username: 'alice' })
  t.equal(countOf(page, '<h1'), 1, 'one h1')
  t.match(page, '<h1>Claude Code wants to use github.com through this gateway</h1>')
  t.match(page, '<title>Allow Claude Code? · MCP gateway</title>')
  t.match(page, 'Signed in to the gateway as <strong>alice</strong>')
  t.match(page, '<span class="host">127.0.0.1</span><br><code>http://127.0.0.1:33418/callback</code>',
    'the redirect host, prominent, and the full redirect URI')
  t.match(page, '<code>c_123</code>', 'the client_id')
  t.match(page, 'this client can only receive the result on this computer: approve it only if you started it yourself')
  t.match(page, '<h2>github.com access it will request</h2>\n<ul><li><code>repo</code></li><li><code>read:org</code></li></ul>')
  t.notMatch(page, 'No scopes')
  t.match(page, 'your browser goes to github.com next, to sign in there')
  t.match(page, '<form method="post" action="/authorize/consent">')
  t.match(page, '<input type="hidden" name="flow" value="f_1">')
  t.match(page, '<input type="hidden" name="csrf" value="k_1">')
  t.match(page, '<input type="checkbox" id="remember" name="remember" value="on"><label for="remember">Don\'t ask again for this client</label>')
  t.notMatch(tag(page, /<input type="checkbox"[^>]*>/), 'checked', 'remembering is opt-in')
  const deny = page.indexOf('<button type="submit" name="decision" value="deny" class="secondary">Deny</button>')
  const approve = page.indexOf('<button type="submit" name="decision" value="approve">Approve</button>')
  t.ok(deny > 0 && approve > 0, 'both decision buttons')
  t.ok(deny < approve, 'deny first: the implicit-submission default is the safe one')
  t.equal(countOf(page, '<form'), 1)
  assertLabelled(t, page)
})

t.test('consent page without the localhost warning, with no scopes', async (t) => {
  const page = consentPage({
    ...base,
    username: 'alice',
    flow: { ...flow, redirectUri: 'cursor://anysphere.cursor-mcp/oauth/callback', redirectHost: 'cursor', localhostOnly: false, upstreamScopes: [] }
  })
  t.notMatch(page, 'Warning')
  t.notMatch(page, 'only receive the result on this computer')
  t.notMatch(page, 'class="note warn"')
  t.match(page, '<span class="host">cursor</span><br><code>cursor://anysphere.cursor-mcp/oauth/callback</code>')
  t.match(page, '<p>No scopes: public read-only access.</p>')
  t.notMatch(page, '<ul>')
})

t.test('a client without a name is still named', async (t) => {
  const page = consentPage({ ...base, username: 'alice', flow: { ...flow, clientName: '  ' } })
  t.match(page, '<h1>An unnamed client wants to use github.com through this gateway</h1>')
  t.match(loginPage({ ...base, flow: { ...flow, clientName: '' } }), '<strong>An unnamed client</strong> wants to connect')
})

t.test('consent page escapes everything it is given', async (t) => {
  const page = consentPage({ action: '/x' + IMG, flowId: SCRIPT + IMG, csrf: SCRIPT + IMG, flow: evilFlow, username: SCRIPT + IMG })
  assertInert(t, page)
  t.match(page, `<li><code>${SCRIPT_ESCAPED}</code></li><li><code>${IMG_ESCAPED}</code></li>`, 'scopes')
  t.match(page, `<code>https://evil.example/cb?x=${SCRIPT_ESCAPED}${IMG_ESCAPED}</code>`, 'redirect URI')
  t.match(page, `<title>Allow ${SCRIPT_ESCAPED}${IMG_ESCAPED}? · MCP gateway</title>`, 'title')
})

t.test('error page', async (t) => {
  const page = errorPage({ title: 'Unknown client', message: 'This client is not registered.', hint: 'Reconnect from your MCP client.' })
  t.match(page, '<title>Unknown client · MCP gateway</title>')
  t.match(page, '<h1>Unknown client</h1>\n<p>This client is not registered.</p>\n<p><strong>What to do:</strong> Reconnect from your MCP client.</p>',
    'what happened, then what to do')
  t.equal(countOf(page, '<h1'), 1)
  t.notMatch(page, /<form|<input|<button|<a /, 'nothing else')

  t.notMatch(errorPage({ title: 'T', message: 'M' }), 'What to do', 'no hint')
  t.notMatch(errorPage({ title: 'T', message: 'M', hint: '' }), 'What to do', 'an empty hint is no hint')

  assertInert(t, errorPage({ title: SCRIPT + IMG, message: SCRIPT + IMG, hint: SCRIPT + IMG }))
})

t.test('login page with single sign-on: its button, beside the password form or in its place (issue 19)', async (t) => {
  const sso = { action: '/login/sso', provider: 'login.example.com' }
  const both = loginPage({ ...base, flow, sso })
  t.equal(countOf(both, '<form'), 2, 'the password form and the sign-on button')
  t.match(both, '<form method="post" action="/login/sso">')
  t.match(both, '<button type="submit" class="secondary">Sign in with\nlogin.example.com</button>')
  const only = loginPage({ ...base, passwords: false, flow, sso })
  t.equal(countOf(only, '<form'), 1)
  t.notMatch(only, 'type="password"', 'no password field')
  t.match(only, '<button type="submit" autofocus>Sign in with\nlogin.example.com</button>', 'the button has the focus')
  t.match(only, 'name="csrf" value="k_1"', 'the button posts the flow\'s CSRF token')
  const evil = loginPage({ ...base, flow, sso: { action: '/login/sso', provider: SCRIPT } })
  t.notMatch(evil, '<script>')
})
