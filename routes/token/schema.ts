import { Type } from 'typebox'
import { CODE_VERIFIER_PATTERN } from '../../lib/pkce.js'

const Param = Type.String({ minLength: 1, maxLength: 2048 })
/** RFC 8707 §2: `resource` may be repeated; every other parameter must not (OAuth 2.1 §3.2). */
const Resource = Type.Union([Param, Type.Array(Param, { maxItems: 5 })])

/**
 * One body for both grants, checked per grant in the handler. A repeated parameter arrives as an
 * array and fails the schema, which maps to `invalid_request` as OAuth 2.1 §3.2 asks; unknown
 * parameters are dropped, as it also asks.
 */
export const TokenRequestBody = Type.Object({
  grant_type: Param,
  code: Type.Optional(Param),
  redirect_uri: Type.Optional(Param),
  code_verifier: Type.Optional(Type.String({ pattern: CODE_VERIFIER_PATTERN })),
  refresh_token: Type.Optional(Param),
  scope: Type.Optional(Type.String({ maxLength: 1000 })),
  resource: Type.Optional(Resource),
  client_id: Type.Optional(Param),
  client_secret: Type.Optional(Param)
}, { additionalProperties: false })

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.Optional(Type.String()),
  scope: Type.String()
})

/** RFC 7009 §2.2: 200 with an empty body, whether or not the token was known. */
export const RevokeResponse = Type.Null()

export const RevokeRequestBody = Type.Object({
  token: Param,
  token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
  client_id: Type.Optional(Param),
  client_secret: Type.Optional(Param)
}, { additionalProperties: false })
