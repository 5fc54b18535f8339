package entraemu_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/entraemu"
)

// The Go operations validate their input like the admin endpoints: a bad
// value is an error and changes nothing.
func TestOperationsValidateInput(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	secret := secretOf(t, entraemu.APIClientID)
	user := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)

	if err := ts.FailNextOBO("nobody@dev.test", 65001); err == nil || !strings.Contains(err.Error(), `no user "nobody@dev.test"`) {
		t.Errorf("unknown user: %v", err)
	}
	if err := ts.FailNextOBO("reader@dev.test", 0); err == nil {
		t.Error("AADSTS 0 accepted")
	}
	if st, b := ts.PostToken(t, oboForm(secret, user.AccessToken)); st != 200 {
		t.Errorf("a refused FailNextOBO armed a failure: %d %v", st, b)
	}
	if err := ts.FailNextOBO(strings.ToUpper(entraemu.ReaderOID), 65001); err != nil {
		t.Fatalf("by oid: %v", err)
	}
	if st, b := ts.PostToken(t, oboForm(secret, user.AccessToken)); st != 400 || !hasCode(b, 65001) {
		t.Errorf("armed by oid: %d %v", st, b)
	}

	if err := ts.SetJWKSFault(entraemu.JWKSFault{Status: 503}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []entraemu.JWKSFault{{Status: 200}, {Status: 302}, {Status: 399}, {Status: 600}, {Status: -1},
		{Delay: -time.Second}, {Delay: 6 * time.Minute}} {
		if err := ts.SetJWKSFault(f); err == nil {
			t.Errorf("SetJWKSFault(%+v) accepted", f)
		}
	}
	path := "/" + entraemu.DefaultTenantID + "/discovery/v2.0/keys"
	if st, _, _ := getJSON(t, ts, path, nil); st != 503 {
		t.Errorf("a refused fault changed the JWKS: %d", st)
	}
	for _, q := range []string{"status=200", "status=302", "status=abc", "delay=6m", "delay=-1s"} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/_emulator/jwks-fault?"+q, nil)
		resp, err := ts.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("admin jwks-fault?%s answered %d", q, resp.StatusCode)
		}
	}
	if err := ts.SetJWKSFault(entraemu.JWKSFault{}); err != nil {
		t.Fatal(err)
	}
}

// The admin endpoints refuse a non-loopback caller through the real handler.
func TestAdminRefusesNonLoopbackCaller(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	old := ts.ActiveKID()
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/_emulator/keys/rotate"}, {http.MethodGet, "/_emulator/keys"},
		{http.MethodPost, "/_emulator/jwks-fault?status=503"}, {http.MethodPost, "/_emulator/fail-next-obo?user=reader@dev.test&aadsts=65001"},
		{http.MethodGet, "/_emulator/counters"}, {http.MethodPost, "/_emulator/counters/reset"},
	} {
		for _, addr := range []string{"10.0.0.7:40000", "[2001:db8::1]:443", "192.168.1.2:80"} {
			r := httptest.NewRequest(c.method, "https://localhost"+c.path, nil)
			r.RemoteAddr = addr
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "loopback callers only") {
				t.Errorf("%s %s from %s: %d %s", c.method, c.path, addr, w.Code, w.Body)
			}
		}
	}
	if ts.ActiveKID() != old {
		t.Error("a refused rotate rotated the keys")
	}
	if st, _, _ := getJSON(t, ts, "/"+entraemu.DefaultTenantID+"/discovery/v2.0/keys", nil); st != 200 {
		t.Errorf("a refused fault applied: %d", st)
	}
	// The same request from loopback works (the refusal is the address).
	r := httptest.NewRequest(http.MethodGet, "https://localhost/_emulator/keys", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("loopback: %d %s", w.Code, w.Body)
	}
}
