package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/internal/devtls"
)

// TestMain lets tests run the real main in a child process (the test
// binary re-executed with DEVIDP_TEST_MAIN=1), to see exit codes and output.
func TestMain(m *testing.M) {
	if os.Getenv("DEVIDP_TEST_MAIN") == "1" {
		os.Args = append([]string{"devidp"}, strings.Fields(os.Getenv("DEVIDP_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs main with args in a child process (1 minute at most).
func runMain(t *testing.T, args ...string) (exitCode int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DEVIDP_TEST_MAIN=1", "DEVIDP_TEST_ARGS="+strings.Join(args, " "))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exitCode = ee.ExitCode()
	default:
		t.Fatalf("run devidp: %v", err)
	}
	return exitCode, out.String(), errb.String()
}

func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"-h", "--help"} {
		code, _, stderr := runMain(t, h)
		if code != 0 || !strings.Contains(stderr, "Usage of devidp") || !strings.Contains(stderr, "-directory") || strings.Contains(stderr, "failed") {
			t.Errorf("%s: exit %d, stderr %q", h, code, stderr)
		}
	}
	if code, _, stderr := runMain(t, "-nope"); code != 2 || !strings.Contains(stderr, "flag provided but not defined: -nope") {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr)
	}
}

// A bad directory file fails at start, naming the field.
func TestBadDirectoryFailsAtStart(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"tenant":{"id":"x"},"users":[{"upn":"a@dev.test","passwd":"p"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	err := run(context.Background(), slog.New(slog.DiscardHandler), []string{"-addr", "127.0.0.1:0", "-state-dir", state, "-directory", bad})
	if err == nil || err.Error() != "directory: users[0].passwd: unknown field" {
		t.Fatalf("in process: %v", err)
	}
	code, _, stderr := runMain(t, "-addr", "127.0.0.1:0", "-state-dir", state, "-directory", bad)
	if code != 1 || !strings.Contains(stderr, "users[0].passwd: unknown field") {
		t.Fatalf("main: exit %d, stderr %q", code, stderr)
	}
}

// With port 0 the advertised authority names the port actually bound.
func TestPortZeroAdvertisesTheRealPort(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	authority := make(chan string, 1)
	done := make(chan error, 1)
	o := options{addr: "127.0.0.1:0", stateDir: state, listening: func(a string) { authority <- a }}
	go func() { done <- start(ctx, slog.New(slog.DiscardHandler), o) }()
	var auth string
	select {
	case auth = <-authority:
	case err := <-done:
		t.Fatalf("devidp stopped: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("devidp did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	u, err := url.Parse(auth)
	if err != nil || u.Port() == "" || u.Port() == "0" || u.Hostname() != "localhost" {
		t.Fatalf("authority %q", auth)
	}
	bundle, err := devtls.Ensure(state)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: bundle.CertPool(), ServerName: "localhost"}}}
	resp, err := c.Get("https://127.0.0.1:" + u.Port() + u.Path + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	if iss, _ := doc["issuer"].(string); iss != auth+"/v2.0" {
		t.Fatalf("issuer %q, want %q", iss, auth+"/v2.0")
	}
}

func TestListenLocalhostPortZeroOnePort(t *testing.T) {
	t.Parallel()
	ls, err := listen("localhost", "0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	port := ls[0].Addr().(*net.TCPAddr).Port
	for _, l := range ls[1:] {
		if p := l.Addr().(*net.TCPAddr).Port; p != port {
			t.Errorf("listeners on ports %d and %d", port, p)
		}
	}
}
