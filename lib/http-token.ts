/**
 * RFC 9110 §5.6.2 `token` (1*tchar): the grammar of a field name. Header names the operator configures and
 * names a browser asks for in a preflight are both checked against this one pattern.
 */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
