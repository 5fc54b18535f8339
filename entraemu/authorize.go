package entraemu

import (
	"net/http"
	"time"
)

// session is an SSO session behind the session cookie.
type session struct {
	who     principal
	expires time.Time
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, invalidRequest(900561, "The authorize endpoint is not available yet in this build of the emulator."))
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, invalidRequest(900561, "The logout endpoint is not available yet in this build of the emulator."))
}
