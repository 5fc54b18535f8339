package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/upstream/graph"
)

func TestLoadConfigDefaultsToGraphShape(t *testing.T) {
	c, err := LoadConfig(func(string) string { return "" })
	if err != nil || c.Mode != "local" || c.Authority != localAuthority || c.ClientID != graphAppID ||
		c.Scope != "User.Read" || c.Addr != "localhost:5051" || c.CAFile != ".devidp/ca.pem" {
		t.Fatalf("%+v %v", c, err)
	}
	if !slices.Contains(c.Audiences, "https://graph.microsoft.com") || !slices.Contains(c.Audiences, "https://graph.microsoft.com/") {
		t.Fatalf("audiences %v", c.Audiences)
	}
	env := map[string]string{"TENANT_ID": "t1", "UPSTREAM_AUDIENCE": "api://mine", "UPSTREAM_SCOPE": "Profile.Read"}
	c, _ = LoadConfig(func(k string) string { return env[k] })
	if c.Mode != "entra" || c.Authority != "https://login.microsoftonline.com/t1" || c.Scope != "Profile.Read" ||
		!slices.Equal(c.Audiences, []string{"api://mine"}) {
		t.Fatalf("%+v", c)
	}
}

// TestUpstreamAcceptsOnlyGraphShapedTokens runs upstream's own validator
// configuration against the emulator: a v1.0 delegated token for its audience
// with User.Read passes; anything else is refused.
func TestUpstreamAcceptsOnlyGraphShapedTokens(t *testing.T) {
	idp := entraemu.NewTestServer(t)
	cfg, err := LoadConfig(func(k string) string { return map[string]string{"AUTHORITY": idp.Authority}[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := newValidator(cfg, idp.Client, log)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	lookup, err := directoryLookup("")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(graph.Handler(v, cfg.Scope, lookup))
	defer srv.Close()

	now := time.Now().Unix()
	claims := func(mod map[string]any) map[string]any {
		c := map[string]any{"aud": "https://graph.microsoft.com", "iss": idp.Authority + "/", "tid": idp.TenantID,
			"oid": "e35a8c02-2ed7-489f-ac07-c14c1234b3c6", "sub": "s", "appid": entraemu.APIClientID, "appidacr": "1",
			"upn": "reader@dev.test", "unique_name": "reader@dev.test", "scp": "User.Read", "ver": "1.0",
			"iat": now, "nbf": now, "exp": now + 3600}
		for k, v := range mod {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cases := []struct {
		name   string
		claims map[string]any
		status int
	}{
		{"v1 delegated User.Read", claims(nil), 200},
		{"app id audience", claims(map[string]any{"aud": entraemu.GraphAppID}), 200},
		{"v2 token", claims(map[string]any{"ver": "2.0", "iss": idp.Authority + "/v2.0", "aud": entraemu.GraphAppID}), 401},
		{"token for the API", claims(map[string]any{"aud": entraemu.APIAppIDURI}), 401},
		{"other scope", claims(map[string]any{"scp": "Mail.Read"}), 403},
		{"app-only", claims(map[string]any{"scp": nil, "roles": []string{"User.Read.All"}, "idtyp": "app"}), 403},
		{"expired", claims(map[string]any{"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200}), 401},
	}
	for _, tc := range cases {
		tok := idp.SignJWT(t, map[string]any{"typ": "JWT"}, tc.claims)
		req, _ := http.NewRequest("GET", srv.URL+"/v1.0/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d (%v)", tc.name, resp.StatusCode, tc.status, body)
		}
		if tc.status == 200 && (body["id"] != "e35a8c02-2ed7-489f-ac07-c14c1234b3c6" || body["displayName"] != "Dev Reader") {
			t.Errorf("%s: %v", tc.name, body)
		}
	}
}
