package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func fakeJWT(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

// fakes answers like the emulator's token endpoint and demoapi; oboStatus
// selects /api/obo's answer.
func fakes(t *testing.T, oboStatus int) (idp, api *httptest.Server) {
	at := fakeJWT(map[string]any{"aud": "68fee0a8", "scp": "access_as_user"})
	idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/t/oauth2/v2.0/token" || r.FormValue("grant_type") != "password" {
			http.Error(w, "bad", 400)
			return
		}
		if r.FormValue("password") != "dev-password" {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"AADSTS50126: Error validating credentials due to invalid username or password.\r\nTrace ID: x"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": at, "token_type": "Bearer",
			"id_token": fakeJWT(map[string]any{"preferred_username": r.FormValue("username"), "name": "Reader", "oid": "e35a", "tid": "2dcb"}),
		})
	}))
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+at {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/api":
			_, _ = w.Write([]byte(`{"name":"Reader","username":"reader@dev.test","oid":"e35a","aud":"68fee0a8","iss":"https://idp/v2.0","ver":"2.0","caller":"user","scopes":["access_as_user"]}`))
		case "/api/obo":
			w.WriteHeader(oboStatus)
			_, _ = w.Write([]byte(`{"upstream":{"displayName":"Reader","userPrincipalName":"reader@dev.test","id":"e35a"},"token":{"source":"cache","tier":"memory","latency_ms":0.01,"scopes":["https://graph.microsoft.com/User.Read"]},"upstream_ms":1.5,"total_ms":1.6}`))
		}
	}))
	t.Cleanup(idp.Close)
	t.Cleanup(api.Close)
	return idp, api
}

func TestWalkcheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		password  string
		oboStatus int
		ok        bool
		want      []string
	}{
		{"all pass", "dev-password", 200, true, []string{"✔ Milestone 1", "user:      reader@dev.test (Reader)", "✔ Milestone 2", "caller:    Reader <reader@dev.test> oid e35a (user)", "scopes:    access_as_user", "✔ Milestone 3", "upstream:  Reader <reader@dev.test> id e35a", "token:     from cache (memory) in 0.01 ms"}},
		{"obo fails", "dev-password", 503, false, []string{"✔ Milestone 2", "✘ Milestone 3", "HTTP 503"}},
		{"wrong password", "nope", 200, false, []string{"✘ Milestone 1", "AADSTS50126", "✘ Milestone 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp, api := fakes(t, tc.oboStatus)
			t.Setenv("AUTHORITY", idp.URL+"/t")
			t.Setenv("API_BASE_URL", api.URL)
			t.Setenv("CHECK_PASSWORD", tc.password)
			t.Setenv("DEVIDP_CA_FILE", "")
			var out bytes.Buffer
			if got := run(context.Background(), &out); got != tc.ok {
				t.Errorf("run = %v, want %v\n%s", got, tc.ok, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "eyJ") {
				t.Errorf("a token was printed:\n%s", out.String())
			}
		})
	}
}
