/*
 * Screen 2, the upstream's own page: "Authorize the gateway?", with Approve and Deny. Plain HTML and an
 * inline style, nothing loaded from anywhere, no script; every value from a request or a registration is
 * escaped.
 */

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'
}
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ENTITIES[c] as string)

const STYLE = `
:root { color-scheme: light dark; --bg: #eef2f7; --card: #ffffff; --text: #1f2937; --muted: #4b5563;
  --accent: #0b57d0; --ring: #0b57d0 }
@media (prefers-color-scheme: dark) { :root { --bg: #0f172a; --card: #1e293b; --text: #f1f5f9;
  --muted: #cbd5e1; --accent: #8ab4f8; --ring: #8ab4f8 } }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; background: var(--bg); color: var(--text) }
main { max-width: 32rem; margin: 2rem auto; padding: 1.5rem; background: var(--card); border-radius: 12px }
h1 { font-size: 1.5rem; margin-top: 0 } .muted { color: var(--muted) }
.host { font-weight: 700; overflow-wrap: anywhere }
form { display: flex; gap: .75rem; justify-content: flex-end; margin-top: 1.5rem }
button { min-height: 44px; padding: 0 1.25rem; font: inherit; border-radius: 8px; border: 2px solid var(--accent);
  cursor: pointer }
button.deny { background: var(--card); color: var(--text) }
button.approve { background: var(--accent); color: var(--card); font-weight: 700 }
button:focus-visible { outline: 3px solid var(--ring); outline-offset: 2px }`

function shell (title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Demo upstream</title>
<link rel="icon" href="data:,"><style>${STYLE}</style></head><body><main>${body}</main></body></html>`
}

/**
 * Security headers of every page: no script, nothing loaded from elsewhere, no framing (a consent page must
 * not be clickjacked), no referrer (the URL holds the request). No form-action: browsers apply it to every
 * redirect after the POST, and the answer goes to the gateway, which redirects on to its own client.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff'
})

export interface ConsentPage {
  clientName: string
  redirectUri: string
  scopes: string[]
  /** The pending request's id, and its CSRF token. */
  request: string
  csrf: string
}

export function consentPage (p: ConsentPage): string {
  const host = new URL(p.redirectUri).host
  const scopes = p.scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('')
  return shell('Authorize the gateway?', `
<h1>Authorize the gateway?</h1>
<p><strong>${escapeHtml(p.clientName)}</strong> asks to use this demo MCP server's tools on your behalf.
It chose that name itself when it registered.</p>
<p>The answer goes to <span class="host">${escapeHtml(host)}</span>.</p>
<h2>Access it asks for</h2>
<ul>${scopes}</ul>
<p class="muted">This demo server has no accounts of its own: approving signs in its one demo user.</p>
<form method="post" action="/authorize">
<input type="hidden" name="request" value="${escapeHtml(p.request)}">
<input type="hidden" name="csrf" value="${escapeHtml(p.csrf)}">
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
</form>`)
}

export function errorPage (title: string, message: string): string {
  return shell(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>
<p class="muted">Start again from your MCP client.</p>`)
}
