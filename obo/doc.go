// Package obo acquires tokens for a downstream API On-Behalf-Of the caller of
// a web API (the OAuth 2.0 jwt-bearer grant with requested_token_use=
// on_behalf_of) over MSAL Go, and calls that downstream API with them.
//
// MSAL Go's own OBO cache lives in one process, never evicts and cannot be
// shared (its external-cache hook is broken for OBO in v1.10.1), and it does
// not merge concurrent misses. So this package keeps its own downstream-token
// cache in front of MSAL:
//
//   - the key is a SHA-256 over the authority, the client id, the normalised
//     scopes and the incoming assertion, so a user's token is only ever found
//     with that user's own assertion;
//   - a value is the downstream access token, served until five minutes before
//     it expires (what MSAL and Entra treat as expired);
//   - the default store is a bounded in-memory LRU; [RedisStore] shares tokens
//     between API instances, encrypted with AES-256-GCM under a configured key
//     ([Keyring]); [TieredStore] puts memory in front of Redis and degrades to
//     memory alone while Redis fails;
//   - concurrent misses for one key make one IdP request: singleflight in an
//     instance, and a short Redis lock ([Locker]) across instances.
//
// Errors from the IdP and from the downstream API are never passed on raw:
// they become an [*Error] whose [Kind] the HTTP layer maps to a status code, a
// WWW-Authenticate challenge and a JSON body ([WriteError]).
package obo
