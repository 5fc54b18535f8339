// Command walkcheck runs the walkthrough headless, the way the page does it but
// without a browser: it signs in with the resource-owner password grant (ROPC)
// through the CLI app, calls GET /api and GET /api/obo with the access token,
// and prints the three milestones. It exits 1 if any milestone fails.
// scripts/run-all.sh --check runs it against the freshly started services.
//
// Environment (defaults = the local mode's directory, DESIGN §3):
//
//	AUTHORITY        https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad
//	DEVIDP_CA_FILE   .devidp/ca.pem (extra trusted root; system roots are always trusted)
//	CHECK_CLIENT_ID  55690640-1531-41cc-ac93-df59fb73fc3f (the CLI app, public client flows allowed)
//	CHECK_USERNAME   reader@dev.test
//	CHECK_PASSWORD   dev-password (local mode only: never put a real password in a file)
//	API_SCOPES       api://68fee0a8-293c-4256-8007-b5453b634b61/access_as_user
//	API_BASE_URL     http://localhost:5050
//
// Tokens are never printed; only claims the API and the upstream report.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/entra-go/secure-api/internal/httpx"
)

func env(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}

func main() {
	ok := run(context.Background(), os.Stdout)
	if !ok {
		os.Exit(1)
	}
}

type milestone struct {
	n     int
	title string
}

func pass(w io.Writer, m milestone, lines ...string) {
	fmt.Fprintf(w, "✔ Milestone %d — %s\n", m.n, m.title)
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

func fail(w io.Writer, m milestone, err error) {
	fmt.Fprintf(w, "✘ Milestone %d — %s\n    FAILED: %v\n", m.n, m.title, err)
}

func run(ctx context.Context, w io.Writer) bool {
	authority := strings.TrimRight(env("AUTHORITY", "https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"), "/")
	caFile := env("DEVIDP_CA_FILE", "")
	if caFile == "" {
		if _, err := os.Stat(".devidp/ca.pem"); err == nil {
			caFile = ".devidp/ca.pem"
		}
	}
	client, err := httpx.ClientTrusting(caFile, 20*time.Second)
	if err != nil {
		fmt.Fprintln(w, "walkcheck:", err)
		return false
	}
	apiBase := strings.TrimRight(env("API_BASE_URL", "http://localhost:5050"), "/")
	scopes := strings.Join(strings.FieldsFunc(env("API_SCOPES", "api://68fee0a8-293c-4256-8007-b5453b634b61/access_as_user"),
		func(r rune) bool { return r == ',' || r == ' ' }), " ")

	m1 := milestone{1, "signed in (ROPC through the CLI app)"}
	m2 := milestone{2, "the web API read the token (GET /api)"}
	m3 := milestone{3, "the API called upstream On-Behalf-Of the user (GET /api/obo)"}

	tok, err := ropc(ctx, client, authority, env("CHECK_CLIENT_ID", "55690640-1531-41cc-ac93-df59fb73fc3f"),
		env("CHECK_USERNAME", "reader@dev.test"), env("CHECK_PASSWORD", "dev-password"), scopes)
	if err != nil {
		fail(w, m1, err)
		fail(w, m2, errors.New("skipped: no token"))
		fail(w, m3, errors.New("skipped: no token"))
		return false
	}
	idc := jwtClaims(tok.IDToken)
	atc := jwtClaims(tok.AccessToken)
	pass(w, m1,
		"user:      "+str(first(idc, atc, "preferred_username", "upn"))+" ("+str(first(idc, atc, "name"))+")",
		"oid:       "+str(first(idc, atc, "oid")),
		"tenant:    "+str(first(idc, atc, "tid")),
		"token for: "+str(atc["aud"])+" scp="+str(atc["scp"]))

	ok := true
	body, err := callAPI(ctx, client, apiBase+"/api", tok.AccessToken)
	if err != nil {
		fail(w, m2, err)
		ok = false
	} else {
		pass(w, m2, summarizeAPI(body)...)
	}
	body, err = callAPI(ctx, client, apiBase+"/api/obo", tok.AccessToken)
	if err != nil {
		fail(w, m3, err)
		ok = false
	} else {
		pass(w, m3, summarizeOBO(body)...)
	}
	return ok
}

type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	IDToken          string `json:"id_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func ropc(ctx context.Context, c *http.Client, authority, clientID, user, password, scopes string) (*tokenResponse, error) {
	form := url.Values{
		"grant_type": {"password"},
		"client_id":  {clientID},
		"username":   {user},
		"password":   {password},
		"scope":      {scopes + " openid profile offline_access"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, authority+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token endpoint unreachable: %w", err)
	}
	defer res.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&tr); err != nil {
		return nil, fmt.Errorf("token endpoint: HTTP %d, undecodable body: %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK || tr.AccessToken == "" {
		return nil, fmt.Errorf("token endpoint: HTTP %d %s: %s", res.StatusCode, tr.Error, firstLine(tr.ErrorDescription))
	}
	return &tr, nil
}

func callAPI(ctx context.Context, c *http.Client, u, token string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d; WWW-Authenticate: %q; body: %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), firstLine(string(raw)))
	}
	if body == nil {
		return nil, fmt.Errorf("HTTP 200 but the body is not a JSON object: %s", firstLine(string(raw)))
	}
	body["_round_trip"] = time.Since(start).Round(time.Millisecond).String()
	return body, nil
}

// summarizeAPI picks what GET /api read from the token; unknown shapes are
// listed whole.
func summarizeAPI(b map[string]any) []string {
	if b["oid"] == nil || b["aud"] == nil {
		return summarize(b)
	}
	return []string{
		"caller:    " + str(b["name"]) + " <" + str(b["username"]) + "> oid " + str(b["oid"]) + " (" + str(b["caller"]) + ")",
		"validated: aud " + str(b["aud"]) + ", iss " + str(b["iss"]) + ", ver " + str(b["ver"]),
		"scopes:    " + str(b["scopes"]) + "   roles: " + str(b["roles"]),
		"round trip " + str(b["_round_trip"]),
	}
}

// summarizeOBO picks the upstream profile and how the token was obtained.
func summarizeOBO(b map[string]any) []string {
	up, _ := b["upstream"].(map[string]any)
	tok, _ := b["token"].(map[string]any)
	if up == nil || tok == nil {
		return summarize(b)
	}
	source := str(tok["source"])
	if source == "cache" && tok["tier"] != nil {
		source += " (" + str(tok["tier"]) + ")"
	}
	return []string{
		"upstream:  " + str(up["displayName"]) + " <" + str(up["userPrincipalName"]) + "> id " + str(up["id"]),
		"token:     from " + source + " in " + str(tok["latency_ms"]) + " ms, scopes " + str(tok["scopes"]),
		"upstream call " + str(b["upstream_ms"]) + " ms, total in the API " + str(b["total_ms"]) + " ms, round trip " + str(b["_round_trip"]),
	}
}

// summarize flattens the answer into "key: value" lines, sorted, one level
// of nesting shown as a.b.
func summarize(body map[string]any) []string {
	var lines []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, vv := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, vv)
			}
		default:
			lines = append(lines, fmt.Sprintf("%s: %s", prefix, str(t)))
		}
	}
	walk("", body)
	sort.Strings(lines)
	return lines
}

func jwtClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return map[string]any{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{}
	}
	return m
}

func first(a, b map[string]any, keys ...string) any {
	for _, m := range []map[string]any{a, b} {
		for _, k := range keys {
			if v, ok := m[k]; ok && v != "" {
				return v
			}
		}
	}
	return nil
}

func str(v any) string {
	switch t := v.(type) {
	case nil:
		return "-"
	case string:
		return t
	case []any:
		s := make([]string, len(t))
		for i, x := range t {
			s[i] = str(x)
		}
		return strings.Join(s, ", ")
	case float64:
		if t == float64(int64(t)) {
			return fmt.Sprintf("%d", int64(t))
		}
		return fmt.Sprint(t)
	default:
		return fmt.Sprint(t)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
