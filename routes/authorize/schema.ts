import { Type } from 'typebox'

const Param = Type.String({ maxLength: 2048 })

/**
 * OAuth 2.1 §4.1.1. Deliberately loose: nothing may fail here before client_id and redirect_uri are
 * checked, because a failure here can only be an error page. The handler checks the rest and, once
 * the redirect URI is trusted, reports problems to the client.
 */
export const AuthorizeQuery = Type.Object({
  // Long enough for a client metadata document's URL (CIMD).
  client_id: Type.String({ minLength: 1, maxLength: 2048 }),
  redirect_uri: Type.Optional(Param),
  response_type: Type.Optional(Param),
  state: Type.Optional(Type.String({ maxLength: 1024 })),
  code_challenge: Type.Optional(Param),
  code_challenge_method: Type.Optional(Param),
  scope: Type.Optional(Param),
  resource: Type.Optional(Type.Union([Param, Type.Array(Param, { maxItems: 5 })]))
}, { additionalProperties: false })

const FlowId = Type.String({ minLength: 1, maxLength: 128 })
const Csrf = Type.String({ minLength: 1, maxLength: 128 })

export const FlowQuery = Type.Object({ flow: FlowId }, { additionalProperties: false })

export const LoginBody = Type.Object({
  flow: FlowId,
  csrf: Csrf,
  username: Type.String({ maxLength: 256 }),
  password: Type.String({ maxLength: 1024 })
}, { additionalProperties: false })

export const ConsentBody = Type.Object({
  flow: FlowId,
  csrf: Csrf,
  decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
  remember: Type.Optional(Type.Literal('on'))
}, { additionalProperties: false })

export const CallbackQuery = Type.Object({
  code: Type.Optional(Param),
  state: Type.Optional(Param),
  error: Type.Optional(Param),
  error_description: Type.Optional(Param),
  error_uri: Type.Optional(Param),
  iss: Type.Optional(Param)
}, { additionalProperties: false })

/** The login page's single sign-on button: the flow and its CSRF token only. */
export const SsoBody = Type.Object({ flow: FlowId, csrf: Csrf }, { additionalProperties: false })

/** The sign-on provider's answer (OpenID Connect Core §3.1.2.5, 3.1.2.6), with Keycloak's and Entra's session_state. */
export const SsoCallbackQuery = Type.Object({
  ...CallbackQuery.properties,
  session_state: Type.Optional(Param)
}, { additionalProperties: false })
