/**
 * The authorize flow's HTML: the gateway login (screen 1, step 1), the per-client consent (step 2,
 * required of a proxy with a static upstream client_id: spec checklist §1.7) and the error page.
 * Pure functions; every value goes through `html`, which escapes it.
 */
import { html, renderPage, type SafeHtml } from '../../lib/html.js'
import type { LoginRefusal } from '../../lib/login-limits.js'
import type { RequestErrorKind } from '../request-errors.js'

const REMEMBER_CHECKBOX = html`<input type="checkbox" id="remember" name="remember" value="on">`

/** What the pages show about the pending authorization. */
export interface FlowView {
  clientName: string
  clientId: string
  /**
   * For a client whose id is its metadata document's URL (CIMD), that URL's host: the one thing about it the
   * gateway verified (the name is whatever the document says). Undefined for a registered client.
   */
  clientHost: string | undefined
  redirectUri: string
  /** The redirect URI's host, or its scheme for private-use schemes such as cursor:// */
  redirectHost: string
  /** Every registered redirect URI is loopback: any local program could be the one listening. */
  localhostOnly: boolean
  /** e.g. github.com */
  upstreamName: string
  upstreamScopes: string[]
}

// client_name is optional in RFC 7591; an empty heading would hide who is asking.
function displayName (flow: FlowView): string {
  return flow.clientName.trim() === '' ? 'An unnamed client' : flow.clientName
}

/** After the name of a CIMD client: the host its document came from, which is what can be trusted. */
function fromHost (flow: FlowView): SafeHtml | false {
  return flow.clientHost !== undefined && html` from <span class="host">${flow.clientHost}</span>`
}

/** Where the client's identity comes from, and how far it can be trusted. */
function clientOrigin (flow: FlowView): SafeHtml {
  return flow.clientHost === undefined
    ? html`<dt>Client ID</dt>
<dd><code>${flow.clientId}</code><br><span class="muted">The client chose its name itself when it registered:
nothing checks it.</span></dd>`
    : html`<dt>Client published by</dt>
<dd><span class="host">${flow.clientHost}</span><br><code>${flow.clientId}</code><br><span class="muted">The gateway
read this client's description from ${flow.clientHost}; its name is what that site says.</span></dd>`
}

function hiddenFields (flowId: string, csrf: string): SafeHtml {
  return html`<input type="hidden" name="flow" value="${flowId}">
<input type="hidden" name="csrf" value="${csrf}">`
}

/**
 * Screen 1's forms, for a flow and for the account page alike: the error, if any, the password form (unless single
 * sign-on replaced passwords) and the single sign-on button, each form carrying `hidden`.
 */
export function signInForms (p: {
  action: string
  hidden: SafeHtml
  passwords: boolean
  sso?: { action: string, provider: string } | undefined
  error?: string | undefined
  username?: string | undefined
}): SafeHtml {
  // Only ever what the user typed on the previous attempt: never a configured value, never a password.
  const username = p.username ?? ''
  const hasError = p.error !== undefined && p.error !== ''
  const describedBy = hasError && html` aria-describedby="login-error" aria-invalid="true"`
  const passwordForm = html`<form method="post" action="${p.action}">
${p.hidden}
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${username}" autocomplete="username"
autocapitalize="none" spellcheck="false" required${describedBy}${username === '' && html` autofocus`}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password"
required${describedBy}${username !== '' && html` autofocus`}>
<div class="actions"><button type="submit">Sign in</button></div>
</form>`
  return html`${hasError && html`<p class="note error" role="alert" id="login-error">${p.error}</p>`}
${p.passwords && passwordForm}
${p.sso !== undefined && html`<form method="post" action="${p.sso.action}">
${p.hidden}
<div class="actions"><button type="submit"${p.passwords ? html` class="secondary"` : html` autofocus`}>Sign in with
${p.sso.provider}</button></div>
</form>`}`
}

export function loginPage (p: {
  action: string,
  flowId: string,
  csrf: string,
  flow: FlowView,
  /** False when single sign-on replaced passwords. */
  passwords: boolean,
  /** The single sign-on button: where it posts, and the provider's name. */
  sso?: { action: string, provider: string },
  error?: string,
  username?: string
}): string {
  const body = html`<h1>Sign in to the MCP gateway</h1>
<p><strong>${displayName(p.flow)}</strong>${fromHost(p.flow)} wants to connect through this gateway.
It will receive the result at <span class="host">${p.flow.redirectHost}</span>.</p>
${signInForms({ ...p, hidden: hiddenFields(p.flowId, p.csrf) })}
<p class="muted">Next you will be asked whether to allow this client.</p>`
  return renderPage({ title: 'Sign in · MCP gateway', body })
}

export function consentPage (p: {
  action: string,
  flowId: string,
  csrf: string,
  flow: FlowView,
  username: string
}): string {
  const { flow } = p
  const name = displayName(flow)
  const scopes = flow.upstreamScopes.length === 0
    ? html`<p>No scopes: public read-only access.</p>`
    : html`<ul>${flow.upstreamScopes.map((s) => html`<li><code>${s}</code></li>`)}</ul>`
  // Deny comes first: a browser's implicit submission (Enter) uses the first submit button in the form,
  // so the accidental default is the safe one; the visual order then matches the focus order.
  const body = html`<h1>${name}${fromHost(flow)} wants to use ${flow.upstreamName} through this gateway</h1>
<p class="muted">Signed in to the gateway as <strong>${p.username}</strong>.</p>
<dl>
<dt>Sends the result to</dt>
<dd><span class="host">${flow.redirectHost}</span><br><code>${flow.redirectUri}</code></dd>
${clientOrigin(flow)}
</dl>
${flow.localhostOnly && html`<p class="note warn"><strong>Warning:</strong>
this client can only receive the result on this computer: approve it only if you started it yourself.
Any program on this computer can claim any name, or another client's identity.</p>`}
<h2>${flow.upstreamName} access it will request</h2>
${scopes}
<p>If you approve, your browser goes to ${flow.upstreamName} next, to sign in there.</p>
<form method="post" action="${p.action}">
${hiddenFields(p.flowId, p.csrf)}
<div class="check">${REMEMBER_CHECKBOX}<label for="remember">Don't ask again for this client</label></div>
<div class="actions">
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
<button type="submit" name="decision" value="approve">Approve</button>
</div>
</form>`
  return renderPage({ title: `Allow ${name}? · MCP gateway`, body })
}

/**
 * Every failure says what happened (`message`) and what to do (`hint`, or the end of `message`). No
 * form, no link back into the flow: a failed flow is started again from the MCP client.
 */
export function errorPage (p: { title: string, message: string, hint?: string }): string {
  const body = html`<h1>${p.title}</h1>
<p>${p.message}</p>
${p.hint !== undefined && p.hint !== '' && html`<p><strong>What to do:</strong> ${p.hint}</p>`}`
  return renderPage({ title: `${p.title} · MCP gateway`, body })
}

/** What each kind of failed request tells the person in the browser. */
export const ERROR_PAGES: Readonly<Record<RequestErrorKind, { title: string, message: string }>> = {
  rate_limited: { title: 'Too many attempts', message: 'Wait a minute, then try again.' },
  body_too_large: {
    title: 'Request too large',
    message: 'What was sent is too large for a sign-in form. Start again from your MCP client.'
  },
  unsupported_media_type: {
    title: 'Unsupported request',
    message: 'These pages accept only their own HTML form. Start again from your MCP client.'
  },
  malformed: {
    title: 'Invalid request',
    message: 'The request to sign in is malformed. Start again from your MCP client.'
  },
  client_error: {
    title: 'Request refused',
    message: 'The gateway cannot handle this request. Start again from your MCP client.'
  },
  store_unavailable: {
    title: 'Temporarily unavailable',
    message: 'The gateway cannot reach its storage right now. Try again in a moment.'
  },
  store_full: {
    title: 'The gateway is busy',
    message: 'Too many sign-ins are in progress right now. Try again in a moment.'
  },
  bug: {
    title: 'Something went wrong',
    message: 'The gateway could not complete this step. Start again from your MCP client.'
  }
}

/** A wait as a person reads it: seconds below a minute, whole minutes (rounded up) above. */
/** What screen 1 says, on the flow's login page and the account page alike, when the login limits refuse a try. */
export function refusalText (refusal: LoginRefusal): string {
  return refusal.reason === 'address'
    ? `There have been too many failed sign-ins from your network. Try again in ${waitText(refusal)}.`
    : `Too many failed sign-ins for this user name. Wait ${waitText(refusal)}, then try again.`
}

function waitText (refusal: LoginRefusal): string {
  const seconds = Math.ceil(refusal.retryAfterMs / 1000)
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`
  const minutes = Math.ceil(seconds / 60)
  return `${minutes} minute${minutes === 1 ? '' : 's'}`
}
