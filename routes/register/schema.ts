import { Type } from 'typebox'

const Uri = Type.String({ minLength: 1, maxLength: 2000 })
const Text = Type.String({ maxLength: 300 })

/**
 * RFC 7591 §2 client metadata. Unknown members are dropped (Fastify's AJV removes additional
 * properties), as §3.1 allows; known ones with values we do not support are refused.
 */
export const RegisterRequestBody = Type.Object({
  redirect_uris: Type.Array(Uri, { minItems: 1, maxItems: 20 }),
  token_endpoint_auth_method: Type.Optional(Type.Union([
    Type.Literal('none'), Type.Literal('client_secret_post'), Type.Literal('client_secret_basic')
  ])),
  grant_types: Type.Optional(Type.Array(
    Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]),
    { minItems: 1, maxItems: 2, uniqueItems: true }
  )),
  response_types: Type.Optional(Type.Array(Type.Literal('code'), { minItems: 1, maxItems: 1 })),
  client_name: Type.Optional(Text),
  client_uri: Type.Optional(Uri),
  logo_uri: Type.Optional(Uri),
  tos_uri: Type.Optional(Uri),
  policy_uri: Type.Optional(Uri),
  scope: Type.Optional(Type.String({ maxLength: 1000 })),
  contacts: Type.Optional(Type.Array(Text, { maxItems: 10 })),
  software_id: Type.Optional(Text),
  software_version: Type.Optional(Text),
  application_type: Type.Optional(Type.Union([Type.Literal('web'), Type.Literal('native')]))
}, { additionalProperties: false })

export const RegisterResponse = Type.Object({
  client_id: Type.String(),
  client_secret: Type.Optional(Type.String()),
  client_id_issued_at: Type.Integer(),
  client_secret_expires_at: Type.Optional(Type.Integer()),
  redirect_uris: Type.Array(Type.String()),
  token_endpoint_auth_method: Type.String(),
  grant_types: Type.Array(Type.String()),
  response_types: Type.Array(Type.String()),
  client_name: Type.Optional(Type.String()),
  client_uri: Type.Optional(Type.String()),
  logo_uri: Type.Optional(Type.String()),
  tos_uri: Type.Optional(Type.String()),
  policy_uri: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
  contacts: Type.Optional(Type.Array(Type.String())),
  software_id: Type.Optional(Type.String()),
  software_version: Type.Optional(Type.String()),
  application_type: Type.Optional(Type.String())
})
