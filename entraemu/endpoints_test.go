package entraemu_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/entra-go/secure-api/entraemu"
)

func getJSON(t *testing.T, ts *entraemu.TestServer, path string, hdr http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: not JSON (%d): %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header, m
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Claim sets pinned against protocol-facts §8.
func TestAccessAndIDTokenClaimSets(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	reader := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", entraemu.APIAppIDURI+"/access_as_user")
	obo := ts.OBOToken(t, entraemu.APIClientID, secretOf(t, entraemu.APIClientID), reader.AccessToken, entraemu.GraphAppIDURI+"/User.Read", "openid", "profile", "offline_access")
	app := ts.ClientCredentialsToken(t, entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID), entraemu.APIAppIDURI+"/.default")
	admin := ts.PasswordToken(t, entraemu.CLIClientID, "admin@dev.test", "dev-password", entraemu.APIAppIDURI+"/access_as_user")
	// The SPA's auth code flow: an id token with the request's nonce.
	br := ts.NewBrowser("reader@dev.test", "dev-password")
	spa := spaRequest()
	res := br.Authorize(t, spa)
	st, spaTok := br.Redeem(t, spa, res, nil)
	if st != 200 {
		t.Fatalf("SPA redeem: %d %v", st, spaTok)
	}
	// An API whose manifest keeps accessTokenAcceptedVersion null gets v1
	// tokens, app-only ones included.
	dir := entraemu.DefaultDirectory()
	dir.App(entraemu.APIClientID).AccessTokenAcceptedVersion = 0
	v1ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	appV1 := v1ts.ClientCredentialsToken(t, entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID), entraemu.APIAppIDURI+"/.default")

	cases := []struct {
		name   string
		token  string
		claims []string
		header []string
		want   map[string]any
	}{
		{"v2 delegated", reader.AccessToken,
			[]string{"aio", "amr", "aud", "azp", "azpacr", "exp", "iat", "iss", "name", "nbf", "oid", "preferred_username", "rh", "scp", "sub", "tid", "uti", "ver"},
			[]string{"alg", "kid", "typ"},
			map[string]any{"aud": entraemu.APIClientID, "ver": "2.0", "azp": entraemu.CLIClientID, "azpacr": "0", "scp": "access_as_user", "iss": ts.Authority + "/v2.0", "tid": entraemu.DefaultTenantID}},
		{"v2 delegated with user app role", admin.AccessToken,
			[]string{"aio", "amr", "aud", "azp", "azpacr", "exp", "iat", "iss", "name", "nbf", "oid", "preferred_username", "rh", "roles", "scp", "sub", "tid", "uti", "ver"},
			[]string{"alg", "kid", "typ"},
			map[string]any{"oid": entraemu.AdminOID}},
		{"v1 delegated (OBO)", obo.AccessToken,
			[]string{"acr", "aio", "amr", "appid", "appidacr", "aud", "exp", "family_name", "given_name", "iat", "iss", "name", "nbf", "oid", "rh", "scp", "sub", "tid", "unique_name", "upn", "uti", "ver"},
			[]string{"alg", "kid", "typ", "x5t"},
			map[string]any{"aud": entraemu.GraphAppIDURI, "ver": "1.0", "appid": entraemu.APIClientID, "appidacr": "1", "scp": "User.Read", "iss": ts.URL + "/" + entraemu.DefaultTenantID + "/", "upn": "reader@dev.test", "unique_name": "reader@dev.test"}},
		{"v2 app-only", app.AccessToken,
			[]string{"aio", "aud", "azp", "azpacr", "exp", "iat", "idtyp", "iss", "nbf", "oid", "rh", "roles", "sub", "tid", "uti", "ver"},
			[]string{"alg", "kid", "typ"},
			map[string]any{"idtyp": "app", "azp": entraemu.DaemonClientID, "azpacr": "1"}},
		{"v2 id token", reader.IDToken,
			[]string{"aio", "aud", "exp", "iat", "iss", "name", "nbf", "oid", "preferred_username", "rh", "sub", "tid", "uti", "ver"},
			[]string{"alg", "kid", "typ"},
			map[string]any{"aud": entraemu.CLIClientID, "ver": "2.0", "oid": entraemu.ReaderOID, "preferred_username": "reader@dev.test", "name": "Dev Reader"}},
		{"v2 id token, auth code with nonce", spaTok["id_token"].(string),
			[]string{"aio", "aud", "exp", "iat", "iss", "name", "nbf", "nonce", "oid", "preferred_username", "rh", "sid", "sub", "tid", "uti", "ver"},
			[]string{"alg", "kid", "typ"},
			map[string]any{"aud": entraemu.SPAClientID, "nonce": res.Nonce, "iss": ts.Authority + "/v2.0", "oid": entraemu.ReaderOID}},
		{"v1 app-only", appV1.AccessToken,
			[]string{"aio", "appid", "appidacr", "aud", "exp", "iat", "idp", "idtyp", "iss", "nbf", "oid", "rh", "roles", "sub", "tid", "uti", "ver"},
			[]string{"alg", "kid", "typ", "x5t"},
			map[string]any{"ver": "1.0", "appid": entraemu.DaemonClientID, "appidacr": "1", "idtyp": "app", "iss": v1ts.URL + "/" + entraemu.DefaultTenantID + "/"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, h := claimsOf(t, tc.token), headerOf(t, tc.token)
			if got := keysOf(c); !slices.Equal(got, tc.claims) {
				t.Errorf("claims = %v\nwant     %v", got, tc.claims)
			}
			if got := keysOf(h); !slices.Equal(got, tc.header) {
				t.Errorf("header = %v, want %v", got, tc.header)
			}
			if h["alg"] != "RS256" || h["typ"] != "JWT" {
				t.Errorf("header %v", h)
			}
			for k, v := range tc.want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat <= 300 {
				t.Errorf("lifetime %v s must exceed 300", exp-iat)
			}
		})
	}
	// Pairwise sub: same user, different apps → different sub; oid stable.
	if claimsOf(t, reader.AccessToken)["sub"] == claimsOf(t, reader.IDToken)["sub"] {
		t.Error("sub is not pairwise: access token (API) and id token (CLI) share it")
	}
	if roles := claimsOf(t, admin.AccessToken)["roles"].([]any); len(roles) != 1 || roles[0] != "Demo.Read.All" {
		t.Errorf("admin roles = %v", roles)
	}
	if amr := claimsOf(t, reader.AccessToken)["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Errorf("amr = %v", amr)
	}
	if reader.TokenType != "Bearer" || reader.ClientInfo == "" || strings.Contains(reader.ClientInfo, "=") {
		t.Errorf("response: token_type %q client_info %q", reader.TokenType, reader.ClientInfo)
	}
	if !strings.Contains(reader.Scope, entraemu.APIAppIDURI+"/access_as_user") {
		t.Errorf("scope %q does not echo the requested scope", reader.Scope)
	}
}

func TestDiscoveryAndJWKSShape(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	tid := entraemu.DefaultTenantID
	_, _, v2 := getJSON(t, ts, "/"+tid+"/v2.0/.well-known/openid-configuration", nil)
	for k, want := range map[string]string{
		"issuer":                 ts.Authority + "/v2.0",
		"token_endpoint":         ts.Authority + "/oauth2/v2.0/token",
		"authorization_endpoint": ts.Authority + "/oauth2/v2.0/authorize",
		"jwks_uri":               ts.Authority + "/discovery/v2.0/keys",
		"end_session_endpoint":   ts.Authority + "/oauth2/v2.0/logout",
	} {
		if v2[k] != want {
			t.Errorf("v2 %s = %v, want %s", k, v2[k], want)
		}
	}
	_, _, v1 := getJSON(t, ts, "/"+tid+"/.well-known/openid-configuration", nil)
	if v1["issuer"] != ts.Authority+"/" || v1["jwks_uri"] != ts.Authority+"/discovery/keys" || v1["end_session_endpoint"] != ts.Authority+"/oauth2/logout" {
		t.Errorf("v1 discovery: %v", v1)
	}
	_, _, common := getJSON(t, ts, "/common/v2.0/.well-known/openid-configuration", nil)
	if common["issuer"] != ts.URL+"/{tenantid}/v2.0" || common["token_endpoint"] != ts.URL+"/common/oauth2/v2.0/token" {
		t.Errorf("common discovery: %v", common)
	}
	_, _, org := getJSON(t, ts, "/organizations/.well-known/openid-configuration", nil)
	if org["issuer"] != ts.URL+"/{tenantid}/" {
		t.Errorf("organizations v1 issuer: %v", org["issuer"])
	}
	_, _, byDomain := getJSON(t, ts, "/dev.test/v2.0/.well-known/openid-configuration", nil)
	if byDomain["issuer"] != ts.Authority+"/v2.0" {
		t.Errorf("domain-addressed discovery issuer: %v", byDomain["issuer"])
	}
	status, _, bad := getJSON(t, ts, "/nope.example/v2.0/.well-known/openid-configuration", nil)
	if status != 400 || bad["error"] != "invalid_tenant" || !hasCode(bad, 90002) {
		t.Errorf("unknown tenant: %d %v", status, bad)
	}

	for path, iss := range map[string]string{
		"/" + tid + "/discovery/v2.0/keys": ts.Authority + "/v2.0",
		"/" + tid + "/discovery/keys":      ts.Authority + "/",
		"/common/discovery/v2.0/keys":      ts.URL + "/{tenantid}/v2.0",
	} {
		_, h, jwks := getJSON(t, ts, path, nil)
		keys := jwks["keys"].([]any)
		if len(keys) != 1 {
			t.Fatalf("%s: %d keys", path, len(keys))
		}
		k := keys[0].(map[string]any)
		if got := keysOf(k); !slices.Equal(got, []string{"e", "issuer", "kid", "kty", "n", "use", "x5c", "x5t"}) {
			t.Errorf("%s: key members %v (Entra: no alg)", path, got)
		}
		if k["kty"] != "RSA" || k["use"] != "sig" || k["issuer"] != iss || k["kid"] != k["x5t"] || k["kid"] != ts.ActiveKID() {
			t.Errorf("%s: key %v", path, k)
		}
		if !strings.Contains(h.Get("Cache-Control"), "max-age") {
			t.Errorf("%s: Cache-Control %q", path, h.Get("Cache-Control"))
		}
	}

	_, _, inst := getJSON(t, ts, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape(ts.Authority+"/oauth2/v2.0/authorize"), nil)
	if inst["tenant_discovery_endpoint"] != ts.Authority+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("instance discovery: %v", inst)
	}
	host := strings.TrimPrefix(ts.URL, "https://")
	md := inst["metadata"].([]any)[0].(map[string]any)
	if md["preferred_network"] != host || md["preferred_cache"] != host {
		t.Errorf("instance metadata: %v", md)
	}
	status, _, inst2 := getJSON(t, ts, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape("https://login.microsoftonline.com/x/oauth2/v2.0/authorize"), nil)
	if status != 400 || !hasCode(inst2, 50049) {
		t.Errorf("foreign instance: %d %v", status, inst2)
	}
	_, _, realm := getJSON(t, ts, "/common/UserRealm/reader@dev.test?api-version=1.0", nil)
	if realm["account_type"] != "Managed" || realm["domain_name"] != "dev.test" || realm["cloud_audience_urn"] == nil {
		t.Errorf("user realm: %v", realm)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	origin := "http://localhost:30662"
	_, h, _ := getJSON(t, ts, "/"+entraemu.DefaultTenantID+"/v2.0/.well-known/openid-configuration", http.Header{"Origin": {origin}})
	if h.Get("Access-Control-Allow-Origin") != origin || !slices.Contains(h.Values("Vary"), "Origin") {
		t.Errorf("discovery CORS headers: %v", h)
	}
	_, h, _ = getJSON(t, ts, "/"+entraemu.DefaultTenantID+"/v2.0/.well-known/openid-configuration", http.Header{"Origin": {"https://evil.example"}})
	if h.Get("Access-Control-Allow-Origin") != "" {
		t.Error("foreign origin allowed")
	}
	req, _ := http.NewRequest(http.MethodOptions, ts.TokenEndpoint()+"?client-request-id=x", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-anchormailbox")
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type, x-anchormailbox" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestKeyRotationAndRevocation(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	old := ts.ActiveKID()
	tok := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	newKID, err := ts.RotateKeys(time.Hour)
	if err != nil || newKID == old {
		t.Fatalf("rotate: %q %v", newKID, err)
	}
	if got := ts.PublishedKIDs(); !slices.Equal(got, []string{newKID, old}) {
		t.Fatalf("published after rotation = %v, want new first then old", got)
	}
	tok2 := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	if headerOf(t, tok2.AccessToken)["kid"] != newKID {
		t.Fatal("new tokens are not signed with the new key")
	}
	// A token of the old key still works for OBO during the grace period.
	secret := secretOf(t, entraemu.APIClientID)
	ts.OBOToken(t, entraemu.APIClientID, secret, tok.AccessToken, graphScope)
	if err := ts.RevokeKey(old); err != nil {
		t.Fatal(err)
	}
	if got := ts.PublishedKIDs(); !slices.Equal(got, []string{newKID}) {
		t.Fatalf("published after revoke = %v", got)
	}
	status, body := ts.PostToken(t, oboForm(secret, tok.AccessToken))
	if status != 400 || body["error"] != "invalid_grant" || !hasCode(body, 50013) {
		t.Fatalf("OBO with a revoked key's token: %d %v", status, body)
	}
	if err := ts.RevokeKey("nope"); err == nil {
		t.Fatal("revoking an unknown kid succeeded")
	}
	// Revoking the active key activates a fresh one.
	if err := ts.RevokeKey(newKID); err != nil || ts.ActiveKID() == newKID || len(ts.PublishedKIDs()) != 1 {
		t.Fatalf("revoke active: %v %v", err, ts.PublishedKIDs())
	}
	// Grace expiry drops the old key.
	now := time.Now()
	clock := func() time.Time { return now }
	ts2 := entraemu.NewTestServer(t, entraemu.WithClock(func() time.Time { return clock() }))
	first := ts2.ActiveKID()
	if _, err := ts2.RotateKeys(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	clock = func() time.Time { return now.Add(11 * time.Minute) }
	if got := ts2.PublishedKIDs(); slices.Contains(got, first) {
		t.Fatalf("old key still published after grace: %v", got)
	}
}

func oboForm(secret, assertion string) url.Values {
	return url.Values{"grant_type": {entraemu.GrantJWTBearer}, "requested_token_use": {"on_behalf_of"},
		"client_id": {entraemu.APIClientID}, "client_secret": {secret}, "assertion": {assertion},
		"scope": {graphScope + " openid offline_access profile"}}
}

func TestJWKSFault(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	path := "/" + entraemu.DefaultTenantID + "/discovery/v2.0/keys"
	ts.SetJWKSFault(entraemu.JWKSFault{Status: 503})
	if status, _, _ := getJSON(t, ts, path, nil); status != 503 {
		t.Fatalf("failing JWKS answered %d", status)
	}
	ts.SetJWKSFault(entraemu.JWKSFault{Delay: 300 * time.Millisecond})
	start := time.Now()
	if status, _, _ := getJSON(t, ts, path, nil); status != 200 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("slow JWKS: %d after %v", status, time.Since(start))
	}
	ts.SetJWKSFault(entraemu.JWKSFault{})
	if status, _, _ := getJSON(t, ts, path, nil); status != 200 {
		t.Fatal("JWKS not healthy again")
	}
	if ts.Count("keys") != 3 {
		t.Fatalf("keys counter = %d", ts.Count("keys"))
	}
}

func TestFailNextOBO(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	secret := secretOf(t, entraemu.APIClientID)
	user := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	cases := []struct {
		code     int
		err, sub string
		claims   bool
	}{
		{50076, "interaction_required", "", true},
		{50079, "interaction_required", "", true},
		{65001, "invalid_grant", "consent_required", false},
		{500011, "invalid_resource", "", false},
		{700024, "invalid_grant", "", false},
		{50013, "invalid_grant", "", false},
	}
	for _, c := range cases {
		ts.FailNextOBO("reader@dev.test", c.code)
		status, body := ts.PostToken(t, oboForm(secret, user.AccessToken))
		if status != 400 || body["error"] != c.err || !hasCode(body, c.code) || (body["suberror"] != nil) != (c.sub != "") || (body["claims"] != nil) != c.claims {
			t.Errorf("AADSTS%d: %d %v", c.code, status, body)
		}
		// Only the next one fails.
		if status, body := ts.PostToken(t, oboForm(secret, user.AccessToken)); status != 200 {
			t.Errorf("after AADSTS%d injection the following OBO failed: %v", c.code, body)
		}
	}
	// By oid, and through MSAL Go.
	ts.FailNextOBO(entraemu.ReaderOID, 65001)
	cred, _ := confidential.NewCredFromSecret(secret)
	_, err := newAPIClient(t, ts, cred).AcquireTokenOnBehalfOf(context.Background(), user.AccessToken, []string{graphScope})
	if b := callErrBody(t, err); b["suberror"] != "consent_required" {
		t.Errorf("MSAL saw %v", b)
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:5555": true, "[::1]:80": true, "127.1.2.3:1": true,
		"10.0.0.1:5555": false, "[2001:db8::1]:443": false, "192.168.1.2:80": false, "garbage": false, "": false,
	} {
		if got := entraemu.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
	ts := entraemu.NewTestServer(t)
	post := func(path string, hdr http.Header) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := ts.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	old := ts.ActiveKID()
	if st, m := post("/_emulator/keys/rotate?grace=1m", nil); st != 200 || m["kid"] != ts.ActiveKID() || ts.ActiveKID() == old {
		t.Fatalf("admin rotate: %d %v", st, m)
	}
	if st, _ := post("/_emulator/keys/revoke?kid="+old, nil); st != 200 || slices.Contains(ts.PublishedKIDs(), old) {
		t.Fatalf("admin revoke: %d", st)
	}
	if st, _ := post("/_emulator/jwks-fault?status=503&delay=0s", nil); st != 200 {
		t.Fatal("admin jwks-fault")
	}
	if st, _, _ := getJSON(t, ts, "/"+entraemu.DefaultTenantID+"/discovery/keys", nil); st != 503 {
		t.Fatal("fault not applied")
	}
	post("/_emulator/jwks-fault?status=0", nil)
	if st, _ := post("/_emulator/fail-next-obo?user=mfa@dev.test&aadsts=65001", nil); st != 200 {
		t.Fatal("admin fail-next-obo")
	}
	if st, _ := post("/_emulator/fail-next-obo?user=nobody@dev.test&aadsts=65001", nil); st != 400 {
		t.Fatal("fail-next-obo for an unknown user accepted")
	}
	if st, _ := post("/_emulator/keys/rotate", http.Header{"Origin": {"https://evil.example"}}); st != 403 {
		t.Fatal("browser request to admin endpoint accepted")
	}
	st, _, counters := getJSON(t, ts, "/_emulator/counters", nil)
	if st != 200 || counters["keys"] != float64(1) {
		t.Fatalf("counters: %v", counters)
	}
}

func TestV1TokenEndpointAndRequestedClaims(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	resp, err := ts.Client.PostForm(ts.Authority+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {entraemu.DaemonClientID}, "client_secret": {secretOf(t, entraemu.DaemonClientID)}, "resource": {entraemu.APIAppIDURI}})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["resource"] != entraemu.APIAppIDURI || body["expires_on"] == nil {
		t.Fatalf("v1 token endpoint: %d %v", resp.StatusCode, body)
	}
	// Client capabilities are stamped as asked (auth contexts need MFA:
	// see TestClaimsChallengeAtTokenEndpoint).
	claims := `{"access_token":{"xms_cc":{"values":["cp1"]}}}`
	status, tok := ts.PostToken(t, url.Values{"grant_type": {"password"}, "client_id": {entraemu.CLIClientID}, "username": {"reader@dev.test"},
		"password": {"dev-password"}, "scope": {apiScope}, "claims": {claims}})
	if status != 200 {
		t.Fatal(tok)
	}
	c := claimsOf(t, tok["access_token"].(string))
	if cc, _ := c["xms_cc"].([]any); len(cc) != 1 || cc[0] != "cp1" {
		t.Errorf("xms_cc = %v", c["xms_cc"])
	}
	if _, ok := c["acrs"]; ok {
		t.Errorf("acrs without a request: %v", c["acrs"])
	}
}

func TestTestServerClose(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	ts.Close()
	if _, err := ts.NewClient().Get(ts.URL + "/healthz"); err == nil {
		t.Fatal("closed test server still answers")
	}
}
