package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// metrics reads GET /metrics over real HTTP (the test's client is loopback)
// and returns the samples by "name{labels}".
func metrics(t testing.TB, base string) (map[string]string, string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			t.Fatalf("malformed sample line %q", line)
		}
		out[line[:i]] = line[i+1:]
	}
	return out, string(raw)
}

func TestMetricsCountOBOSourcesAndStayLocal(t *testing.T) {
	w := newWorld(t, worldOpts{})
	api := w.api(apiOpts{})
	tok := w.userToken("reader@dev.test")
	want := func(m map[string]string, kv ...string) {
		t.Helper()
		for i := 0; i < len(kv); i += 2 {
			if m[kv[i]] != kv[i+1] {
				t.Errorf("%s = %q, want %s", kv[i], m[kv[i]], kv[i+1])
			}
		}
	}
	m, _ := metrics(t, api)
	want(m, `demoapi_obo_token_requests_total{source="idp"}`, "0", `demoapi_obo_token_requests_total{source="cache"}`, "0",
		`demoapi_obo_idp_exchanges_total`, "0")
	if m["demoapi_jwks_fetches_total"] == "" || m["demoapi_jwks_fetches_total"] == "0" {
		t.Errorf("demoapi_jwks_fetches_total = %q after the keys loaded", m["demoapi_jwks_fetches_total"])
	}

	if a := callOBO(t, api, tok); a.status != 200 || a.source() != "idp" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	m, _ = metrics(t, api)
	want(m, `demoapi_obo_token_requests_total{source="idp"}`, "1", `demoapi_obo_token_requests_total{source="cache"}`, "0",
		`demoapi_obo_token_seconds_count{source="idp"}`, "1", `demoapi_obo_idp_exchanges_total`, "1",
		`demoapi_obo_errors_total`, "0", `demoapi_obo_coalesced_total`, "0",
		`demoapi_obo_upstream_requests_total{outcome="ok"}`, "1")
	if s := m[`demoapi_obo_token_seconds_sum{source="idp"}`]; s == "" || s == "0" {
		t.Errorf("idp seconds sum %q", s)
	}

	if a := callOBO(t, api, tok); a.status != 200 || a.source() != "cache" {
		t.Fatalf("second call: %d %v", a.status, a.body)
	}
	m, raw := metrics(t, api)
	want(m, `demoapi_obo_token_requests_total{source="idp"}`, "1", `demoapi_obo_token_requests_total{source="cache"}`, "1",
		`demoapi_obo_token_seconds_count{source="cache"}`, "1", `demoapi_obo_idp_exchanges_total`, "1",
		`demoapi_obo_upstream_requests_total{outcome="ok"}`, "2")
	if s := m[`demoapi_obo_token_seconds_sum{source="cache"}`]; s == "" || s == "0" {
		t.Errorf("cache seconds sum %q", s)
	}
	if n := w.oboGrants(); n != 1 {
		t.Fatalf("%d OBO grants", n)
	}
	// Counters only: no token, user or key material.
	for _, secret := range []string{"eyJ", "reader", readerOID, "Bearer", "dev-api-secret", "down."} {
		if strings.Contains(raw, secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
		if strings.HasPrefix(l, "# TYPE ") && !strings.HasSuffix(l, " counter") && !strings.HasSuffix(l, " summary") {
			t.Errorf("unexpected type line %q", l)
		}
	}

	// Through the same instance's whole stack: loopback peers only.
	for addr, code := range map[string]int{
		"127.0.0.1:40000": 200, "[::1]:40000": 200, "127.0.0.2:1": 200,
		"192.0.2.10:40000": 403, "[2001:db8::1]:443": 403, "10.0.0.5:80": 403, "[::ffff:192.0.2.1]:1": 403, "": 403,
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = addr
		rec := httptest.NewRecorder()
		w.handler.ServeHTTP(rec, r)
		if rec.Code != code {
			t.Errorf("RemoteAddr %q: %d, want %d", addr, rec.Code, code)
		}
		if code == 403 && strings.Contains(rec.Body.String(), "demoapi_") {
			t.Errorf("RemoteAddr %q: refused but the body has metrics: %s", addr, rec.Body)
		}
	}
}

// Without On-Behalf-Of set up, /metrics still answers the key metrics.
func TestMetricsWithoutOBO(t *testing.T) {
	m := newMiniIDP(t)
	srv, _ := newTestAPI(t, m)
	got, raw := metrics(t, srv.URL)
	if got["demoapi_jwks_fetches_total"] == "" || strings.Contains(raw, "demoapi_obo_") {
		t.Fatalf("%s", raw)
	}
}
