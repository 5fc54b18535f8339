// Package svc holds the wiring every command of this project repeats: the
// process skeleton (logger, signal-cancelled context, exit code), the choice
// between the local emulator and a real Entra tenant from the environment,
// small environment helpers, and the wait for the emulator's dev CA file.
// It is not an API: the commands (demoapi, upstream, demohost, devidp) use it
// so that each main stays pure wiring and they all read the environment alike.
package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/entra-go/secure-api/internal/httpx"
)

// Modes: local is the devidp emulator on this machine, entra a real tenant.
// The mode is informational (logs, the page); the code path is the same.
const (
	ModeLocal = "local"
	ModeEntra = "entra"
)

// Local-mode defaults (DESIGN §3).
const (
	DefaultTenantID = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"
	LocalAuthority  = "https://localhost:8443/" + DefaultTenantID
	// DefaultCAFile is where devidp writes its dev CA certificate (its
	// default state directory), relative to the repository root.
	DefaultCAFile = ".devidp/ca.pem"
)

// Main runs a command: a text logger on stderr, a context cancelled by
// SIGINT or SIGTERM (graceful shutdown), and exit status 1 after logging
// msg with the error when run fails.
func Main(msg string, run func(ctx context.Context, log *slog.Logger) error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log)
	stop()
	if err != nil {
		log.Error(msg, "err", err)
		os.Exit(1)
	}
}

// ResolveAuthority chooses the identity provider from the environment
// (getenv is os.Getenv outside tests):
//
//   - neither AUTHORITY nor TENANT_ID: local mode, the emulator's authority
//     https://localhost:8443/<default tenant>, and the dev CA file
//     .devidp/ca.pem unless DEVIDP_CA_FILE names another;
//   - TENANT_ID only: entra mode, https://login.microsoftonline.com/<TENANT_ID>;
//   - AUTHORITY (wins over TENANT_ID): as given; local mode when its host is
//     https://localhost:… or https://127.0.0.1:…, else entra mode.
//
// caFile is DEVIDP_CA_FILE when set ("" outside the zero-configuration case:
// system roots only).
func ResolveAuthority(getenv func(string) string) (authority, mode, caFile string) {
	authority, mode, caFile = getenv("AUTHORITY"), ModeLocal, getenv("DEVIDP_CA_FILE")
	tenant := getenv("TENANT_ID")
	switch {
	case authority == "" && tenant == "":
		authority = LocalAuthority
		if caFile == "" {
			caFile = DefaultCAFile
		}
	case authority == "":
		authority = "https://login.microsoftonline.com/" + tenant
		mode = ModeEntra
	default:
		if !strings.HasPrefix(authority, "https://localhost:") && !strings.HasPrefix(authority, "https://127.0.0.1:") {
			mode = ModeEntra
		} else if caFile == "" {
			// An explicit emulator authority still trusts the emulator's CA.
			caFile = DefaultCAFile
		}
	}
	return authority, mode, caFile
}

// Or returns v, or def when v is empty (an unset variable).
func Or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// List splits a comma- or space-separated value; empty items are dropped.
// The result is never nil (an empty value gives an empty list).
func List(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// WaitForFile waits up to max for path to exist: the emulator writes its CA
// certificate on its first run, possibly just after the service started
// (scripts/run-all.sh starts them together). It returns early when ctx ends
// or when the file exists or cannot be checked (the client that reads it
// reports the real error).
func WaitForFile(ctx context.Context, path string, max time.Duration, log *slog.Logger) {
	if path == "" {
		return // nothing to wait for
	}
	deadline := time.Now().Add(max)
	logged := false
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
			return
		}
		if !logged {
			log.Info(fmt.Sprintf("waiting for %s (start devidp, or set DEVIDP_CA_FILE)", path))
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// IdPClient returns the HTTP client a service uses to reach the identity
// provider (discovery, keys, token endpoint): system roots plus caFile when
// set, 10s timeout. In local mode it first waits (up to 30s) for the
// emulator to write caFile.
func IdPClient(ctx context.Context, mode, caFile string, log *slog.Logger) (*http.Client, error) {
	if mode == ModeLocal {
		WaitForFile(ctx, caFile, 30*time.Second, log)
	}
	return httpx.ClientTrusting(caFile, 10*time.Second)
}
