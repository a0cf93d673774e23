/**
 * The account page's HTML: its sign-in form and the list of the person's connected clients, each with its
 * revoke button. Pure functions; every value goes through `html`, which escapes it.
 */
import type { GrantSummary } from '../../lib/grants.js'
import { html, renderPage, type SafeHtml } from '../../lib/html.js'
import { signInForms } from '../authorize/pages.js'
import type { RequestErrorKind } from '../request-errors.js'

export function accountSignInPage (p: {
  action: string
  csrf: string
  /** False when single sign-on replaced passwords. */
  passwords: boolean
  /** The single sign-on button: where it posts, and the provider's name. */
  sso?: { action: string, provider: string }
  error?: string
  username?: string
  notice?: string
}): string {
  const body = html`<h1>Your MCP gateway account</h1>
${p.notice !== undefined && html`<p class="note" role="status">${p.notice}</p>`}
<p>Sign in to see the MCP clients you connected through this gateway, and to disconnect them.</p>
${signInForms({ ...p, hidden: html`<input type="hidden" name="csrf" value="${p.csrf}">` })}`
  return renderPage({ title: 'Your account · MCP gateway', body })
}

/** A client's name as the page shows it; RFC 7591 makes the name optional, and an empty heading would hide it. */
export function displayName (grant: GrantSummary): string {
  return grant.clientName === undefined || grant.clientName.trim() === '' ? 'An unnamed client' : grant.clientName
}

function when (ms: number | undefined, never: string): SafeHtml {
  if (ms === undefined) return html`${never}`
  const iso = new Date(ms).toISOString()
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`
}

/** A grant as the page lists it: with the host of a client whose id is its metadata document's URL (CIMD). */
export type ListedGrant = GrantSummary & { clientHost: string | undefined }

function clientCard (grant: ListedGrant, csrf: string, action: string, index: number): SafeHtml {
  const name = displayName(grant)
  const heading = `client-${index}`
  const scopes = grant.upstreamScopes.length === 0
    ? html`none (public read-only access)`
    : grant.upstreamScopes.map((s, i) => html`${i > 0 && ', '}<code>${s}</code>`)
  return html`<section class="client" aria-labelledby="${heading}">
<h2 id="${heading}">${name}${grant.clientHost !== undefined &&
  html` <span class="muted">from</span> <span class="host">${grant.clientHost}</span>`}</h2>
<dl>
<dt>Access</dt>
<dd><code>${grant.scope}</code> on this gateway; upstream: ${scopes}</dd>
<dt>Signed in upstream as</dt>
<dd>${grant.upstreamLogin ?? 'not known'}</dd>
<dt>Connected</dt>
<dd>${when(grant.createdAt, 'before this gateway recorded it')}</dd>
<dt>Last used</dt>
<dd>${when(grant.lastUsedAt, 'not used yet')}</dd>
</dl>
<form method="post" action="${action}">
<input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="grant" value="${grant.id}">
<div class="actions"><button type="submit" class="secondary" aria-describedby="${heading}">Revoke</button></div>
</form>
</section>`
}

export function accountPage (p: {
  username: string
  grants: ListedGrant[]
  csrf: string
  revokeAction: string
  signOutAction: string
  notice?: string
}): string {
  const list = p.grants.length === 0
    ? html`<p>You have no MCP clients connected through this gateway.</p>`
    : p.grants.map((grant, i) => clientCard(grant, p.csrf, p.revokeAction, i + 1))
  const body = html`<h1>Your MCP gateway account</h1>
<p class="muted">Signed in as <strong>${p.username}</strong>.</p>
${p.notice !== undefined && html`<p class="note" role="status">${p.notice}</p>`}
<p>These MCP clients can use your upstream access through this gateway. Revoking one ends its access at once;
it will have to ask you again.</p>
${list}
<form method="post" action="${p.signOutAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<div class="actions"><button type="submit">Sign out</button></div>
</form>`
  return renderPage({ title: 'Your account · MCP gateway', body })
}

/** What each kind of failed request tells the person on the account page. */
export const ACCOUNT_ERROR_PAGES: Readonly<Record<RequestErrorKind, { title: string, message: string }>> = {
  rate_limited: { title: 'Too many attempts', message: 'Wait a minute, then try again.' },
  body_too_large: { title: 'Request too large', message: 'What was sent is too large for this page\'s forms.' },
  unsupported_media_type: { title: 'Unsupported request', message: 'This page accepts only its own HTML forms.' },
  malformed: {
    title: 'Invalid request',
    message: 'The request is malformed. Go back to your account page and try again.'
  },
  client_error: { title: 'Request refused', message: 'The gateway cannot handle this request.' },
  store_unavailable: {
    title: 'Temporarily unavailable',
    message: 'The gateway cannot reach its storage right now. Try again in a moment.'
  },
  store_full: {
    title: 'The gateway is busy',
    message: 'Too many people are signed in right now. Try again in a moment.'
  },
  bug: { title: 'Something went wrong', message: 'The gateway could not complete this step. Try again.' }
}

/** A failure on the account page: what happened, and the way back to the page. */
export function accountErrorPage (p: { title: string, message: string, back: string }): string {
  const body = html`<h1>${p.title}</h1>
<p>${p.message}</p>
<p><a href="${p.back}">Back to your account</a></p>`
  return renderPage({ title: `${p.title} · MCP gateway`, body })
}
