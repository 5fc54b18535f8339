package entraemu

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type pageKind int

const (
	pageLogin pageKind = iota + 1
	pageConsent
	pageMFA
)

// pageData feeds the one page template (sign-in, consent, MFA, error,
// signed-out).
type pageData struct {
	Title    string
	Subtitle string
	Message  string
	Error    string
	Action   string // form target; "" = no form
	Flow     string
	CSRF     string
	Kind     pageKind
	Username string
	Scopes   []string
	OTC      string
	Details  []string
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — devidp</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f2f2f2;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem 2.5rem;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:1.5rem;font-weight:600;margin:.5rem 0}
.brand{color:#666;font-size:.9rem}.err{color:#a80000}.note{color:#555;font-size:.9rem}
label{display:block;margin-top:1rem}input[type=text],input[type=email],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box;font-size:1rem}
.buttons{margin-top:1.5rem;display:flex;gap:.5rem;justify-content:flex-end}
button{padding:.5rem 1.5rem;font-size:1rem;border:1px solid #0067b8;background:#fff;color:#0067b8}
button.primary{background:#0067b8;color:#fff}code.otc{font-size:1.6rem;letter-spacing:.2rem}
.details{font-size:.8rem;color:#666;word-break:break-all}
</style></head>
<body><main>
<div class="brand">devidp · local Entra ID emulator (development only)</div>
<h1>{{.Title}}</h1>
{{with .Subtitle}}<p>{{.}}</p>{{end}}
{{with .Error}}<p class="err" role="alert" id="error">{{.}}</p>{{end}}
{{with .Message}}<p>{{.}}</p>{{end}}
{{if .Action}}<form method="post" action="{{.Action}}">
<input type="hidden" name="flow" value="{{.Flow}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
{{if eq .Kind 1}}
<label for="username">Email or username</label><input type="email" id="username" name="username" value="{{.Username}}" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="buttons"><button type="submit" class="primary" name="action" value="signin" id="signin">Sign in</button></div>
{{else if eq .Kind 2}}
<p>This app would like to:</p><ul id="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<p class="note">Accepting lets the app use these permissions on your behalf. You can change this later.</p>
<div class="buttons"><button type="submit" name="action" value="cancel" id="cancel">Cancel</button><button type="submit" class="primary" name="action" value="accept" id="accept">Accept</button></div>
{{else if eq .Kind 3}}
<p>Enter the code displayed in your authenticator app.</p>
<p class="note">devidp has no authenticator: your one-time code is <code class="otc" id="otc">{{.OTC}}</code></p>
<label for="code">Code</label><input type="text" id="code" name="otc" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<div class="buttons"><button type="submit" name="action" value="cancel" id="cancel">Cancel</button><button type="submit" class="primary" name="action" value="verify" id="verify">Verify</button></div>
{{end}}
</form>{{end}}
{{if .Details}}<div class="details">{{range .Details}}<div>{{.}}</div>{{end}}</div>{{end}}
</main></body></html>`))

// renderPage writes a page with security headers; formTargets are extra
// origins forms (and redirects after them) may go to.
func (s *Server) renderPage(w http.ResponseWriter, status int, d pageData, formTargets ...string) {
	setPageHeaders(w)
	csp := "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
	for _, t := range formTargets {
		csp += " " + t
	}
	w.Header().Set("Content-Security-Policy", csp+"; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

// originOf is scheme://host of a URL, for CSP.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// showPage saves the flow and renders its next form.
func (s *Server) showPage(w http.ResponseWriter, r *http.Request, f *authzFlow, kind pageKind, errMsg string) {
	s.saveFlow(f)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie + f.id, Value: f.csrf, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(flowLifetime / time.Second)})
	base := "/" + url.PathEscape(f.p.tenant)
	d := pageData{Flow: f.id, CSRF: f.csrf, Kind: kind, Error: errMsg, Subtitle: "to continue to " + f.p.client.DisplayName}
	switch kind {
	case pageLogin:
		d.Title, d.Action, d.Username = "Sign in", base+"/login", f.p.loginHint
	case pageConsent:
		d.Title, d.Action = "Permissions requested", base+"/consent"
		d.Subtitle = f.p.client.DisplayName + " (" + f.p.client.AppID + ") — signed in as " + f.who.user.UPN
		d.Scopes = s.consentLines(f.p)
	case pageMFA:
		d.Title, d.Action, d.OTC = "Approve sign-in request", base+"/mfa", f.mfaCode
		d.Subtitle = "Verify your identity, " + f.who.user.UPN
	}
	s.renderPage(w, http.StatusOK, d, originOf(f.p.redirectURI))
}

func (s *Server) consentLines(p authorizeParams) []string {
	var out []string
	oidc := p.qs[0].oidc // shared by every resource of the request
	if oidc["openid"] || oidc["profile"] {
		out = append(out, "Sign you in and read your profile")
	}
	if oidc["offline_access"] {
		out = append(out, "Maintain access to data you have given it access to")
	}
	for _, q := range p.qs { // every resource on one page (consent up front)
		for _, v := range consentScopes(p.client, q) {
			if sc, ok := q.resource.scope(v); ok {
				label := sc.AdminConsentDisplayName
				if label == "" {
					label = sc.Value
				}
				out = append(out, label+" ("+q.resource.DisplayName+": "+sc.Value+")")
			}
		}
	}
	return out
}

// errorPage shows an error that must not be redirected (unknown client,
// unregistered redirect URI, ...), in Entra's words.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, e *oauthError) {
	b := s.errorBody(r, e)
	s.log.Info("authorize error page", "aadsts", e.AADSTS, "correlation_id", b.CorrelationID)
	s.renderPage(w, status, pageData{
		Title:   "Sorry, but we're having trouble signing you in.",
		Error:   strings.SplitN(b.ErrorDescription, "\r\n", 2)[0],
		Details: []string{"Request Id: " + b.TraceID, "Correlation Id: " + b.CorrelationID, "Timestamp: " + b.Timestamp},
	})
}

var formPostTmpl = template.Must(template.New("fp").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Working...</title></head>
<body><form method="post" action="{{.Action}}">{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<noscript><p>Script is disabled. Click Continue to finish signing in.</p><button type="submit">Continue</button></noscript></form>
<script nonce="{{.Nonce}}">document.forms[0].submit();</script></body></html>`))

// formPost is response_mode=form_post: an auto-submitting form (CSP nonce),
// with a button when scripts are off.
func (s *Server) formPost(w http.ResponseWriter, action string, v url.Values) {
	nonce := randomB64(18)
	setPageHeaders(w)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+originOf(action)+"; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(http.StatusOK)
	_ = formPostTmpl.Execute(w, map[string]any{"Action": action, "Fields": v, "Nonce": nonce})
}
