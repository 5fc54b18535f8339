// Package entraemu is a local emulator of the Microsoft Entra ID endpoints that
// MSAL Go, msal-browser and protected web APIs use. It lets the whole system run
// and be tested with no tenant and no internet.
//
// The emulator is faithful where a client or an API can tell: discovery
// documents (v1 and v2, tenant, common, organizations), JWKS keys without
// "alg" and with "issuer", the authorize pages (sign-in, consent, MFA
// step-up, PKCE, prompt, response modes, SSO), the token endpoint
// (authorization_code, refresh_token, client_credentials, password and the
// On-Behalf-Of jwt-bearer grant with full assertion validation), v1 and v2
// access tokens per the resource's accessTokenAcceptedVersion, and
// Entra-shaped errors (AADSTS codes, trace and correlation ids, suberror,
// claims challenges).
//
// In Go tests:
//
//	ts := entraemu.NewTestServer(t) // HTTPS on 127.0.0.1, closed by t.Cleanup
//	tok := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password",
//		entraemu.APIAppIDURI+"/access_as_user")
//	cca, _ := confidential.New(ts.Authority, entraemu.APIClientID, cred,
//		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(ts.Client))
//
// The directory (tenant, users, app registrations, consents, conditional
// access) is data: DefaultDirectory is the shipped file, LoadDirectory reads
// another. Operations for tests (RotateKeys, RevokeKey, SetJWKSFault,
// FailNextOBO, Count) are methods of Server and are also served to loopback
// callers under /_emulator/.
package entraemu
