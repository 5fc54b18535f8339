package obo

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

// Response is the JSON answer of Handler on success (Milestone 3).
type Response struct {
	// Upstream is the downstream API's JSON answer, verbatim.
	Upstream       json.RawMessage `json:"upstream"`
	UpstreamURL    string          `json:"upstream_url"`
	UpstreamStatus int             `json:"upstream_status"`
	Token          TokenInfo       `json:"token"`
	// UpstreamMS is the downstream call's latency in milliseconds.
	UpstreamMS float64 `json:"upstream_ms"`
	// TotalMS is token + downstream call.
	TotalMS float64 `json:"total_ms"`
}

// TokenInfo says how the downstream token was obtained.
type TokenInfo struct {
	Source    Source    `json:"source"`         // "cache" or "idp"
	Tier      string    `json:"tier,omitempty"` // "memory" or "redis" for cache hits
	Coalesced bool      `json:"coalesced"`      // joined a concurrent request's IdP call
	LatencyMS float64   `json:"latency_ms"`
	ExpiresOn time.Time `json:"expires_on"`
	Scopes    []string  `json:"scopes"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Handler serves GET /api/obo: it calls d On-Behalf-Of the caller and answers
// Response, or the error contract of WriteError. Mount it behind apiauth's
// middleware: it exchanges only the token that the middleware validated
// (apiauth.BearerTokenFrom) and answers 401 invalid_token without one.
func Handler(d *Downstream, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assertion, _ := apiauth.BearerTokenFrom(r.Context())
		res, err := d.Get(r.Context(), assertion)
		if err == nil && !json.Valid(res.Body) {
			err = &Error{Kind: KindUpstream, UpstreamStatus: res.Status, Message: "the upstream response is not JSON"}
		}
		if err != nil {
			lvl := slog.LevelWarn
			if e, ok := err.(*Error); ok && e.Status() >= 500 {
				lvl = slog.LevelError
			}
			logger.LogAttrs(r.Context(), lvl, "obo: downstream call failed", slog.String("err", err.Error()))
			WriteError(w, err, d.Tokens.AuthorizeURL())
			return
		}
		lvl := slog.LevelInfo // an IdP exchange; cache hits are routine
		if res.Token.Source == SourceCache {
			lvl = slog.LevelDebug
		}
		logger.LogAttrs(r.Context(), lvl, "obo: downstream call",
			slog.String("token_source", string(res.Token.Source)), slog.String("tier", res.Token.Tier),
			slog.Bool("coalesced", res.Token.Coalesced), slog.Duration("token_latency", res.Token.Latency),
			slog.Duration("upstream_latency", res.UpstreamLatency), slog.Int("upstream_status", res.Status),
			slog.String("key", res.Token.CacheKey))
		out := Response{
			Upstream: res.Body, UpstreamURL: d.URL, UpstreamStatus: res.Status,
			Token: TokenInfo{Source: res.Token.Source, Tier: res.Token.Tier, Coalesced: res.Token.Coalesced,
				LatencyMS: ms(res.Token.Latency), ExpiresOn: res.Token.ExpiresOn.UTC(), Scopes: d.Scopes},
			UpstreamMS: ms(res.UpstreamLatency), TotalMS: ms(res.Total),
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	})
}
