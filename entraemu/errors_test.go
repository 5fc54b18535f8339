package entraemu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/entra-go/secure-api/entraemu"
)

var descRE = regexp.MustCompile(`^AADSTS(\d+): .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)

// checkEntraError asserts the Entra error shape and returns the body.
func checkEntraError(t *testing.T, status int, body []byte, wantStatus int, wantErr string, wantCode int) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body not JSON: %q", body)
	}
	if status != wantStatus || m["error"] != wantErr || !hasCode(m, wantCode) {
		t.Fatalf("got %d %v, want %d %s AADSTS%d", status, m, wantStatus, wantErr, wantCode)
	}
	d, _ := m["error_description"].(string)
	if !descRE.MatchString(d) || !strings.HasPrefix(d, "AADSTS") {
		t.Errorf("error_description shape: %q", d)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("missing %s", k)
		}
	}
	return m
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	api, daemon := secretOf(t, entraemu.APIClientID), secretOf(t, entraemu.DaemonClientID)
	reader := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	app := ts.ClientCredentialsToken(t, entraemu.DaemonClientID, daemon, entraemu.APIAppIDURI+"/.default")
	expired := ts.SignJWT(t, nil, map[string]any{"aud": entraemu.APIClientID, "iss": ts.Authority + "/v2.0", "exp": 1, "nbf": 0,
		"scp": "access_as_user", "oid": entraemu.ReaderOID, "tid": entraemu.DefaultTenantID})
	ropc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"password"}, "client_id": {entraemu.CLIClientID}, "username": {"reader@dev.test"},
			"password": {"dev-password"}, "scope": {apiScope}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	obo := func(kv ...string) url.Values {
		v := oboForm(api, reader.AccessToken)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	cases := []struct {
		name   string
		form   url.Values
		status int
		err    string
		code   int
		sub    string
	}{
		{"no grant_type", url.Values{}, 400, "invalid_request", 900144, ""},
		{"unknown grant", url.Values{"grant_type": {"magic"}}, 400, "unsupported_grant_type", 70003, ""},
		{"no client_id", ropc("client_id", ""), 400, "invalid_request", 900144, ""},
		{"unknown client", ropc("client_id", "11111111-1111-1111-1111-111111111111"), 400, "unauthorized_client", 700016, ""},
		{"wrong password", ropc("password", "nope"), 400, "invalid_grant", 50126, ""},
		{"unknown user", ropc("username", "ghost@dev.test"), 400, "invalid_grant", 50034, ""},
		{"no username", ropc("username", ""), 400, "invalid_request", 900144, ""},
		{"no scope", ropc("scope", ""), 400, "invalid_scope", 70011, ""},
		{"unknown resource", ropc("scope", "api://nope/x"), 400, "invalid_resource", 500011, ""},
		{"unknown scope", ropc("scope", entraemu.APIAppIDURI+"/nope"), 400, "invalid_scope", 70011, ""},
		{"two resources", ropc("scope", apiScope+" "+graphScope), 400, "invalid_scope", 28000, ""},
		{"no consent", ropc("scope", graphScope), 400, "invalid_grant", 65001, "consent_required"},
		{"ROPC without public client flows", ropc("client_id", entraemu.SPAClientID), 401, "invalid_client", 7000218, ""},
		{"secret to a public client", ropc("client_secret", "whatever-secret"), 401, "invalid_client", 700025, ""},
		{"malformed claims", ropc("claims", "{nope"), 400, "invalid_request", 90009, ""},
		{"client credentials wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {entraemu.DaemonClientID}, "client_secret": {"wrong-secret"}, "scope": {entraemu.APIAppIDURI + "/.default"}}, 401, "invalid_client", 7000215, ""},
		{"client credentials no secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {entraemu.DaemonClientID}, "scope": {entraemu.APIAppIDURI + "/.default"}}, 401, "invalid_client", 7000218, ""},
		{"client credentials not .default", url.Values{"grant_type": {"client_credentials"}, "client_id": {entraemu.DaemonClientID}, "client_secret": {daemon}, "scope": {apiScope}}, 400, "invalid_scope", 1002012, ""},
		{"OBO wrong secret", obo("client_secret", "wrong-secret"), 401, "invalid_client", 7000215, ""},
		{"OBO no assertion", obo("assertion", ""), 400, "invalid_request", 900144, ""},
		{"OBO no requested_token_use", obo("requested_token_use", ""), 400, "invalid_request", 900144, ""},
		{"OBO garbage assertion", obo("assertion", "a.b.c"), 400, "invalid_request", 50027, ""},
		{"OBO app-only assertion", obo("assertion", app.AccessToken), 400, "invalid_request", 50027, ""},
		{"OBO expired assertion", obo("assertion", expired), 400, "invalid_grant", 500133, ""},
		{"OBO tampered assertion", obo("assertion", tamper(reader.AccessToken)), 400, "invalid_grant", 50013, ""},
		{"OBO assertion for another audience", obo("assertion", reader.IDToken), 400, "invalid_grant", 500131, ""},
		{"OBO by another app", obo("client_id", entraemu.DaemonClientID, "client_secret", daemon), 400, "invalid_grant", 500131, ""},
		{"refresh unknown", url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.CLIClientID}, "refresh_token": {"nope"}, "scope": {apiScope}}, 400, "invalid_grant", 9002313, ""},
		{"code unknown", url.Values{"grant_type": {"authorization_code"}, "client_id": {entraemu.SPAClientID}, "code": {"nope"}, "redirect_uri": {"http://localhost:30662/"}}, 400, "invalid_grant", 70008, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := postRaw(t, ts, c.form.Encode(), nil)
			m := checkEntraError(t, status, body, c.status, c.err, c.code)
			if c.sub != "" && m["suberror"] != c.sub {
				t.Errorf("suberror = %v", m["suberror"])
			}
		})
	}
}

func tamper(jwt string) string {
	p := strings.Split(jwt, ".")
	sig := []byte(p[2])
	if sig[5] == 'A' {
		sig[5] = 'B'
	} else {
		sig[5] = 'A'
	}
	return p[0] + "." + p[1] + "." + string(sig)
}

func postRaw(t *testing.T, ts *entraemu.TestServer, body string, hdr http.Header) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.TokenEndpoint(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	big := strings.Repeat("a", 70<<10)
	cases := []struct {
		name   string
		body   string
		hdr    http.Header
		status int
		code   int
	}{
		{"repeated parameter", "grant_type=password&grant_type=password", nil, 400, 9002313},
		{"oversized body", "grant_type=password&x=" + big, nil, 400, 9002313},
		{"bad encoding", "grant_type=%zz", nil, 400, 9002313},
		{"json body", `{"grant_type":"password"}`, http.Header{"Content-Type": {"application/json"}}, 400, 900144},
		{"correlation id echoed", "", http.Header{"Client-Request-Id": {"0b7c1f2e-1111-4222-8333-444455556666"}}, 400, 900144},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := postRaw(t, ts, c.body, c.hdr)
			m := checkEntraError(t, status, body, c.status, "invalid_request", c.code)
			if c.hdr.Get("Client-Request-Id") != "" && m["correlation_id"] != c.hdr.Get("Client-Request-Id") {
				t.Errorf("correlation_id %v not echoed", m["correlation_id"])
			}
		})
	}
	resp, err := ts.Client.Get(ts.TokenEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkEntraError(t, resp.StatusCode, b, 400, "invalid_request", 900561)
	resp, err = ts.Client.Get(ts.URL + "/" + entraemu.DefaultTenantID + "/discovery/keys?" + strings.Repeat("q", 20<<10))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	checkEntraError(t, resp.StatusCode, b, 400, "invalid_request", 90015)
}

func TestRefreshTokenRotation(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	first := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.CLIClientID}, "refresh_token": {first.RefreshToken},
		"scope": {apiScope + " openid offline_access profile"}, "client_info": {"1"}}
	status, second := ts.PostToken(t, form)
	if status != 200 || second["refresh_token"] == first.RefreshToken || second["access_token"] == nil {
		t.Fatalf("refresh: %d %v", status, second)
	}
	status, body := postRaw(t, ts, form.Encode(), nil)
	checkEntraError(t, status, body, 400, "invalid_grant", 70000) // old RT is spent
	form.Set("refresh_token", second["refresh_token"].(string))
	form.Set("client_id", entraemu.SPAClientID)
	status, body = postRaw(t, ts, form.Encode(), nil)
	checkEntraError(t, status, body, 400, "invalid_grant", 70000) // bound to its client
}

// FuzzTokenRequest feeds arbitrary bodies and headers to the token endpoint:
// it must always answer 200 or an Entra-style 4xx, never 500 or a panic.
func FuzzTokenRequest(f *testing.F) {
	seeds := []string{
		"grant_type=password&client_id=" + entraemu.CLIClientID + "&username=reader@dev.test&password=dev-password&scope=" + url.QueryEscape(apiScope+" openid offline_access profile") + "&client_info=1",
		"grant_type=client_credentials&client_id=" + entraemu.DaemonClientID + "&client_secret=dev-daemon-secret&scope=" + url.QueryEscape(entraemu.APIAppIDURI+"/.default"),
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&requested_token_use=on_behalf_of&client_id=" + entraemu.APIClientID + "&client_secret=dev-api-secret&assertion=e30.e30.e30&scope=User.Read",
		"grant_type=refresh_token&client_id=" + entraemu.CLIClientID + "&refresh_token=1.Axx&scope=openid",
		"grant_type=authorization_code&client_id=" + entraemu.SPAClientID + "&code=1.A&redirect_uri=http%3A%2F%2Flocalhost%3A30662%2F&code_verifier=x",
		"grant_type=client_credentials&client_id=" + entraemu.APIClientID + "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJQUzI1NiJ9.e30.AA&scope=x%2F.default",
		"grant_type=password&claims=%7B%22access_token%22%3A%7B%22xms_cc%22%3A%7B%22values%22%3A%5B1%5D%7D%7D%7D",
		"grant_type=password&scope=%2F%2F%2F.default+a%2Fb%2F",
		"",
	}
	for _, s := range seeds {
		f.Add(s, "")
	}
	f.Add("grant_type=client_credentials", "Basic "+"ZTNhODlhYTAtOTVlNi00OGFjLWI0ZDQtZWQ0MGE1MzcyMjY3OmRldi1kYWVtb24tc2VjcmV0")
	srv, err := entraemu.New(entraemu.Config{IssuerHost: "localhost:8443"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, authz string) {
		req := httptest.NewRequest(http.MethodPost, "/"+entraemu.DefaultTenantID+"/oauth2/v2.0/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" && !strings.ContainsAny(authz, "\r\n") {
			req.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 && w.Code != 400 && w.Code != 401 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code != 200 {
			var m map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["error"] == nil || !bytes.Contains(w.Body.Bytes(), []byte("AADSTS")) {
				t.Fatalf("not an Entra error: %s", w.Body.String())
			}
		}
	})
}
