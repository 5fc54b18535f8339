package obo

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultMaxBody bounds a downstream response body.
const DefaultMaxBody = 1 << 20

// Downstream calls one downstream API with tokens from Tokens.
type Downstream struct {
	Tokens *Client
	// URL is the downstream endpoint, e.g. "http://localhost:5051/v1.0/me"
	// or "https://graph.microsoft.com/v1.0/me".
	URL string
	// Scopes requested for it, e.g. "https://graph.microsoft.com/User.Read".
	Scopes []string
	// HTTPClient calls the downstream API; nil = http.DefaultClient's
	// transport. Timeout bounds the whole call, body included (default 10s).
	HTTPClient *http.Client
	Timeout    time.Duration
	// MaxBody bounds the response body (default DefaultMaxBody); a larger
	// body is an upstream failure.
	MaxBody int64

	// Upstream calls by outcome (see DownstreamStats). Do not copy a
	// Downstream once used.
	ok, unauthorized, failed, timeouts, unreachable atomic.Int64
}

// DownstreamStats counts the calls a Downstream made to its API, by outcome,
// since it was created. Calls that failed before reaching the API (no token)
// are not counted here (see Client.Stats).
type DownstreamStats struct {
	OK           int64 // 2xx within MaxBody
	Unauthorized int64 // 401: the token was refused (with or without a claims challenge)
	Failed       int64 // any other status, or a body over MaxBody
	Timeouts     int64 // no complete answer within Timeout
	Unreachable  int64 // connection or transport errors, canceled calls
}

// Stats returns the upstream call counters (each read atomically).
func (d *Downstream) Stats() DownstreamStats {
	return DownstreamStats{OK: d.ok.Load(), Unauthorized: d.unauthorized.Load(), Failed: d.failed.Load(),
		Timeouts: d.timeouts.Load(), Unreachable: d.unreachable.Load()}
}

// countTransport counts a call that got no complete answer (e from upstreamErr).
func (d *Downstream) countTransport(e *Error) *Error {
	if e.Kind == KindUpstreamTimeout {
		d.timeouts.Add(1)
	} else {
		d.unreachable.Add(1)
	}
	return e
}

// Result is a downstream answer and how it was obtained (for the response,
// logs and metrics). It never holds the downstream token.
type Result struct {
	Status      int
	ContentType string
	Body        []byte
	// Token describes how the downstream token was obtained; its
	// AccessToken is blanked.
	Token Token
	// UpstreamLatency is the downstream call alone; Total includes the token.
	UpstreamLatency time.Duration
	Total           time.Duration
}

// Get calls the downstream API On-Behalf-Of the caller whose validated
// access token is assertion. Only a 2xx answer is a Result; everything else is
// an *Error: the token errors of Client.Token; a downstream 401 carrying a
// claims challenge (continuous access evaluation, step-up) becomes
// KindClaimsChallenge with the downstream's claims (and the cached token is
// dropped); a downstream timeout KindUpstreamTimeout; any other failure
// KindUpstream with the downstream status.
func (d *Downstream) Get(ctx context.Context, assertion string) (*Result, error) {
	start := time.Now()
	tok, err := d.Tokens.Token(ctx, assertion, d.Scopes)
	if err != nil {
		return nil, err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	maxBody := d.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	hc := d.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, d.URL, nil)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Message: "bad upstream URL", Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	tok.AccessToken = ""
	ustart := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, d.countTransport(upstreamErr(cctx, err, 0))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, d.countTransport(upstreamErr(cctx, err, resp.StatusCode))
	}
	ulat := time.Since(ustart)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		d.unauthorized.Add(1)
		// Our token was refused: never serve it again.
		d.Tokens.Forget(context.WithoutCancel(ctx), assertion, d.Scopes)
		if claims, ok := claimsFromChallenge(resp.Header.Values("WWW-Authenticate")); ok {
			return nil, &Error{Kind: KindClaimsChallenge, Claims: claims, UpstreamStatus: resp.StatusCode,
				Message: "the upstream API requires additional claims"}
		}
		return nil, &Error{Kind: KindUpstream, UpstreamStatus: resp.StatusCode, Message: "the upstream API refused the token"}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		d.failed.Add(1)
		return nil, &Error{Kind: KindUpstream, UpstreamStatus: resp.StatusCode, Message: "the upstream API failed"}
	case int64(len(body)) > maxBody:
		d.failed.Add(1)
		return nil, &Error{Kind: KindUpstream, UpstreamStatus: resp.StatusCode, Message: "the upstream response is too large"}
	}
	d.ok.Add(1)
	return &Result{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body,
		Token: tok, UpstreamLatency: ulat, Total: time.Since(start)}, nil
}

func upstreamErr(ctx context.Context, err error, status int) *Error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Kind: KindUpstreamTimeout, UpstreamStatus: status, Message: "the upstream API did not answer in time", Err: err}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return &Error{Kind: KindUpstream, UpstreamStatus: status, Message: "the request was canceled", Err: err}
	}
	return &Error{Kind: KindUpstream, UpstreamStatus: status, Message: "the upstream API cannot be reached", Err: err}
}

// claimsFromChallenge finds error="insufficient_claims" with a claims
// parameter in Bearer challenges and returns the decoded claims JSON.
func claimsFromChallenge(values []string) (string, bool) {
	for _, v := range values {
		params := parseChallengeParams(v)
		if params["error"] != "insufficient_claims" || params["claims"] == "" {
			continue
		}
		raw, err := decodeB64(params["claims"])
		if err != nil || len(raw) == 0 || raw[0] != '{' {
			continue
		}
		return string(raw), true
	}
	return "", false
}

// parseChallengeParams parses the auth-params of a (single-scheme) Bearer
// challenge: name="quoted" or name=token pairs separated by commas.
func parseChallengeParams(v string) map[string]string {
	out := map[string]string{}
	s := strings.TrimSpace(v)
	if i := strings.IndexByte(s, ' '); i > 0 && !strings.Contains(s[:i], "=") {
		if !strings.EqualFold(s[:i], "Bearer") {
			return out
		}
		s = s[i+1:]
	}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ,")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " ")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			val = b.String()
			if i < len(s) {
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		out[name] = val
	}
	return out
}
