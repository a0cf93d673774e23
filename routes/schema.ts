import { Type } from 'typebox'

/** RFC 6749 §5.2 error body; also the response schema, so nothing else can leak into it. */
export const OAuthErrorBody = Type.Object({
  error: Type.String(),
  error_description: Type.Optional(Type.String())
})
