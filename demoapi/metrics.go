package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/internal/httpx"
	"github.com/entra-go/secure-api/obo"
)

// metricsHandler serves GET /metrics in the Prometheus text exposition
// format, written by hand (no client library): counters only, never a token,
// key, user id or name. Loopback callers only (a scraper on the same host or
// an SSH tunnel); others get 403. down is nil when /api/obo is not set up:
// then only the signing-key metrics are answered.
func metricsHandler(v *apiauth.Validator, down *obo.Downstream) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.IsLoopback(r.RemoteAddr) {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "metrics are served to loopback callers only", http.StatusForbidden)
			return
		}
		var p promText
		p.counter("demoapi_jwks_fetches_total", "Signing-key set (JWKS) fetches started.", v.KeyFetches())
		if down != nil {
			writeOBOMetrics(&p, down.Tokens.Stats(), down.Stats())
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(p.b.String()))
	})
}

func writeOBOMetrics(p *promText, st obo.Stats, ds obo.DownstreamStats) {
	p.family("demoapi_obo_token_requests_total", "counter",
		"Downstream tokens obtained for /api/obo callers, by source: cache (memory, Redis or MSAL's cache) or idp (an On-Behalf-Of exchange; callers coalesced into one each count).")
	p.sample("demoapi_obo_token_requests_total", `source="cache"`, strconv.FormatInt(st.CacheTokens, 10))
	p.sample("demoapi_obo_token_requests_total", `source="idp"`, strconv.FormatInt(st.IdPTokens, 10))
	p.family("demoapi_obo_token_seconds", "summary", "Time /api/obo callers spent obtaining a downstream token, by source.")
	p.sample("demoapi_obo_token_seconds_sum", `source="cache"`, seconds(st.CacheTime))
	p.sample("demoapi_obo_token_seconds_count", `source="cache"`, strconv.FormatInt(st.CacheTokens, 10))
	p.sample("demoapi_obo_token_seconds_sum", `source="idp"`, seconds(st.IdPTime))
	p.sample("demoapi_obo_token_seconds_count", `source="idp"`, strconv.FormatInt(st.IdPTokens, 10))
	p.counter("demoapi_obo_idp_exchanges_total", "On-Behalf-Of token requests sent to the IdP, failed ones included.", st.IdPExchanges)
	p.counter("demoapi_obo_coalesced_total", "Token calls that shared one IdP exchange with concurrent callers (the caller that started it included).", st.Coalesced)
	p.counter("demoapi_obo_errors_total", "Downstream-token acquisitions that failed (IdP errors, timeouts, missing consent or claims).", st.Errors)
	p.counter("demoapi_obo_msal_clients_built_total", "MSAL confidential clients built: 1, plus one per rebuild bounding MSAL's own cache.", st.MSALClients)
	p.family("demoapi_obo_upstream_requests_total", "counter", "Calls to the upstream API by outcome.")
	for _, o := range []struct {
		label string
		n     int64
	}{{"ok", ds.OK}, {"unauthorized", ds.Unauthorized}, {"failed", ds.Failed}, {"timeout", ds.Timeouts}, {"unreachable", ds.Unreachable}} {
		p.sample("demoapi_obo_upstream_requests_total", `outcome="`+o.label+`"`, strconv.FormatInt(o.n, 10))
	}
}

// promText accumulates Prometheus text exposition (format 0.0.4). Help
// texts and label values here are constants: nothing needs escaping.
type promText struct{ b strings.Builder }

func (p *promText) family(name, typ, help string) {
	p.b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func (p *promText) sample(name, labels, value string) {
	p.b.WriteString(name)
	if labels != "" {
		p.b.WriteString("{" + labels + "}")
	}
	p.b.WriteString(" " + value + "\n")
}

func (p *promText) counter(name, help string, n int64) {
	p.family(name, "counter", help)
	p.sample(name, "", strconv.FormatInt(n, 10))
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) }
