package entraemu

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/entra-go/secure-api/internal/httpx"
)

// RotateKeys publishes and activates a new signing key at once (listed
// first in the JWKS) and keeps the previous one published for grace.
func (s *Server) RotateKeys(grace time.Duration) (string, error) {
	kid, err := s.keys.rotate(grace)
	if err == nil {
		s.log.Info("signing key rotated", "kid", kid, "grace", grace)
	}
	return kid, err
}

// RevokeKey removes a key from the JWKS at once (tokens it signed stop
// validating); revoking the active key activates a new one first.
func (s *Server) RevokeKey(kid string) error {
	err := s.keys.revoke(kid)
	if err == nil {
		s.log.Info("signing key revoked", "kid", kid)
	}
	return err
}

// ActiveKID is the kid of the key that signs new tokens.
func (s *Server) ActiveKID() string { return s.keys.active().KID }

// PublishedKIDs are the kids in the JWKS, newest first.
func (s *Server) PublishedKIDs() []string {
	var out []string
	for _, k := range s.keys.published() {
		out = append(out, k.KID)
	}
	return out
}

// SetJWKSFault makes the JWKS endpoints slow and/or failing; the zero
// value restores them. Delay must be 0–5 min (the server's write timeout
// allows 6) and Status 0 (answer normally) or an error status 400–599: a
// 200 or a redirect would not be a fault. An invalid fault is an error and
// changes nothing.
func (s *Server) SetJWKSFault(f JWKSFault) error {
	if f.Delay < 0 || f.Delay > maxJWKSDelay {
		return fmt.Errorf("entraemu: JWKS fault delay must be between 0 and %v, got %v", maxJWKSDelay, f.Delay)
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("entraemu: JWKS fault status must be 0 (healthy) or 400-599, got %d", f.Status)
	}
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
	s.log.Info("jwks fault set", "delay", f.Delay, "status", f.Status)
	return nil
}

const maxJWKSDelay = 5 * time.Minute

// IsLoopback reports whether a RemoteAddr ("ip:port") is a loopback
// address; the admin endpoints refuse everything else.
func IsLoopback(remoteAddr string) bool { return httpx.IsLoopback(remoteAddr) }

func (s *Server) adminRoutes(m *http.ServeMux) {
	m.Handle("POST /_emulator/keys/rotate", s.admin(s.adminRotate))
	m.Handle("POST /_emulator/keys/revoke", s.admin(s.adminRevoke))
	m.Handle("GET /_emulator/keys", s.admin(s.adminKeys))
	m.Handle("POST /_emulator/jwks-fault", s.admin(s.adminJWKSFault))
	m.Handle("POST /_emulator/fail-next-obo", s.admin(s.adminFailOBO))
	m.Handle("GET /_emulator/counters", s.admin(s.adminCounters))
	m.Handle("POST /_emulator/counters/reset", s.admin(s.adminResetCounters))
}

// admin guards operations: loopback callers only, and no browser requests
// (a page on any origin could otherwise POST here from the developer's own
// machine).
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopback(r.RemoteAddr) {
			adminError(w, http.StatusForbidden, "admin endpoints accept loopback callers only")
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Mode") != "" {
			adminError(w, http.StatusForbidden, "admin endpoints refuse browser requests")
			return
		}
		s.count("admin")
		h(w, r)
	})
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) adminRotate(w http.ResponseWriter, r *http.Request) {
	grace := time.Hour
	if g := r.URL.Query().Get("grace"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < 0 {
			adminError(w, http.StatusBadRequest, "grace must be a Go duration such as 10m")
			return
		}
		grace = d
	}
	kid, err := s.RotateKeys(grace)
	if err != nil {
		adminError(w, http.StatusInternalServerError, "rotation failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kid": kid, "published": s.PublishedKIDs()})
}

func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request) {
	kid := r.URL.Query().Get("kid")
	if err := s.RevokeKey(kid); err != nil {
		adminError(w, http.StatusNotFound, "no published key with that kid")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": kid, "active": s.ActiveKID(), "published": s.PublishedKIDs()})
}

func (s *Server) adminKeys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"active": s.ActiveKID(), "published": s.PublishedKIDs()})
}

func (s *Server) adminJWKSFault(w http.ResponseWriter, r *http.Request) {
	var f JWKSFault
	q := r.URL.Query()
	if d := q.Get("delay"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil {
			adminError(w, http.StatusBadRequest, "delay must be a Go duration between 0 and 5m")
			return
		}
		f.Delay = v
	}
	if st := q.Get("status"); st != "" {
		v, err := strconv.Atoi(st)
		if err != nil {
			adminError(w, http.StatusBadRequest, "status must be 0 (healthy) or 400-599")
			return
		}
		f.Status = v
	}
	if err := s.SetJWKSFault(f); err != nil { // the same rules as from Go
		adminError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "entraemu: "))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"delay": f.Delay.String(), "status": f.Status})
}

func (s *Server) adminFailOBO(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user := q.Get("user")
	code, err := strconv.Atoi(q.Get("aadsts"))
	if err != nil {
		adminError(w, http.StatusBadRequest, "need user=<upn or oid of a directory user> and aadsts=<code>")
		return
	}
	if err := s.FailNextOBO(user, code); err != nil { // the same rules as from Go
		adminError(w, http.StatusBadRequest, "need user=<upn or oid of a directory user> and aadsts=<code>: "+strings.TrimPrefix(err.Error(), "entraemu: "))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "aadsts": code})
}

func (s *Server) adminCounters(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Counters())
}

func (s *Server) adminResetCounters(w http.ResponseWriter, r *http.Request) {
	s.ResetCounters()
	writeJSON(w, http.StatusOK, map[string]any{"reset": true})
}
