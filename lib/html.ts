/**
 * The one way the gateway builds HTML. Every interpolation is escaped unless it is already `SafeHtml`,
 * so a value from a request or a client registration (client_name, redirect_uri, state, username)
 * cannot turn into markup: `state`, for one, is echoed into pages, and unescaped it would be a reflected XSS.
 */

/** Markup that is already safe: the output of `html`, or a constant written in this codebase. */
export class SafeHtml {
  readonly value: string

  constructor (value: string) {
    this.value = value
  }
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  // Old IE treated a backtick as an attribute quote; escaping it costs nothing.
  '`': '&#96;'
}

/** Escapes text for use in element content or a quoted attribute value. */
export function escapeHtml (value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ENTITIES[c] as string)
}

function interpolate (value: unknown): string {
  if (value instanceof SafeHtml) return value.value
  // `cond && html`...`` and optional fields render as nothing rather than "false" or "undefined".
  if (value === null || value === undefined || value === false) return ''
  if (Array.isArray(value)) return value.map(interpolate).join('')
  return escapeHtml(String(value))
}

/** Tagged template: the literal parts are trusted, every `${value}` is escaped unless it is `SafeHtml`. */
export function html (strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  // String.raw interleaves the parts with the substitutions; handing it the cooked strings keeps
  // escapes such as `\n` in the literal parts working as they would in a plain template.
  return new SafeHtml(String.raw({ raw: strings }, ...values.map(interpolate)))
}

/** Headers for every HTML reply. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  // Pages carry a per-flow CSRF token and the signed-in user's name: never cache them.
  'cache-control': 'no-store',
  // No scripts at all, no external resources, no framing (the consent page must not be clickjacked).
  // There is deliberately no form-action: Chromium applies it to the redirect that follows a form POST,
  // and our POSTs redirect to the upstream and to clients' custom schemes (cursor://, vscode://).
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  // For browsers that predate frame-ancestors.
  'x-frame-options': 'DENY',
  // The page URL can hold the authorization request; do not leak it to the upstream or to the client.
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff'
})

// Inline because the CSP allows no external resources. Colours meet WCAG AA in both schemes
// (text at least 4.5:1, borders and focus rings at least 3:1).
const PAGE_CSS = new SafeHtml(`
:root{color-scheme:light dark;--bg:#f3f4f6;--fg:#1b1f24;--muted:#4b5563;--card:#fff;--line:#d1d5db;
--accent:#0b5cad;--on-accent:#fff;--focus:#0b5cad;
--warn-bg:#fff4d6;--warn-fg:#5c3d00;--warn-line:#b7791f;--err-bg:#fdecec;--err-fg:#8a1c1c;--err-line:#c53030}
@media (prefers-color-scheme:dark){:root{--bg:#0f1216;--fg:#e6e8eb;--muted:#aab2bd;--card:#1a1f26;--line:#3a424d;
--accent:#6aaef5;--on-accent:#0b1420;--focus:#8cc4ff;
--warn-bg:#3a2c05;--warn-fg:#ffe08a;--warn-line:#d69e2e;--err-bg:#3d1313;--err-fg:#ffb4b4;--err-line:#f56565}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;background:var(--bg);color:var(--fg);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:32rem;margin:max(1rem,6vh) auto;padding:1.5rem;background:var(--card);
border:1px solid var(--line);border-radius:12px}
main>:last-child{margin-bottom:0}
h1{margin:0 0 1rem;font-size:1.375rem;line-height:1.3;overflow-wrap:anywhere}
h2{margin:1.25rem 0 .5rem;font-size:1rem}
p,ul,dl{margin:0 0 1rem}
dt{font-weight:600}
dd{margin:0 0 .5rem}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
li{margin:0 0 .25rem}
li>code{padding:.0625rem .375rem;background:var(--bg);border:1px solid var(--line);border-radius:4px}
.host{font-size:1.125rem;font-weight:700;line-height:1.3;overflow-wrap:anywhere}
.muted{color:var(--muted);font-size:.925rem}
.note{padding:.75rem 1rem;border:1px solid;border-left-width:4px;border-radius:8px}
.warn{background:var(--warn-bg);color:var(--warn-fg);border-color:var(--warn-line)}
.error{background:var(--err-bg);color:var(--err-fg);border-color:var(--err-line)}
label{display:block;margin:0 0 .25rem;font-weight:600}
input[type=text],input[type=password]{display:block;width:100%;margin:0 0 1rem;
padding:.625rem .75rem;font:inherit;color:var(--fg);background:var(--card);
border:1px solid var(--muted);border-radius:8px}
.check{display:flex;gap:.5rem;align-items:center}
.check input{width:1.25rem;height:1.25rem;margin:0;accent-color:var(--accent)}
.check label{margin:0;font-weight:400}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.25rem}
form+p{margin-top:1rem}
.client{margin:0 0 1.25rem;padding:1rem 0 0;border-top:1px solid var(--line)}
.client h2{margin-top:0}
button{flex:1 1 8rem;padding:.625rem 1rem;font:inherit;font-weight:600;color:var(--on-accent);background:var(--accent);
border:1px solid var(--accent);border-radius:8px;cursor:pointer}
button.secondary{color:var(--fg);background:transparent;border-color:var(--muted)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
@media (max-width:30rem){body{padding:.5rem}main{margin:.5rem auto;padding:1.25rem 1rem}}
`)

/** A complete, self-contained document around `body`. */
export function renderPage (p: { title: string, body: SafeHtml, lang?: string }): string {
  // The empty data: icon stops the browser from asking the gateway for /favicon.ico.
  return html`<!doctype html>
<html lang="${p.lang ?? 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${p.title}</title>
<link rel="icon" href="data:,">
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
${p.body}
</main>
</body>
</html>
`.value
}
