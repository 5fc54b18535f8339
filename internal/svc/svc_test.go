package svc

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestResolveAuthority(t *testing.T) {
	cases := []struct {
		name                    string
		env                     map[string]string
		authority, mode, caFile string
	}{
		{"nothing set", nil, "https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad", "local", ".devidp/ca.pem"},
		{"nothing set, CA file override", map[string]string{"DEVIDP_CA_FILE": "/x/ca.pem"},
			LocalAuthority, "local", "/x/ca.pem"},
		{"tenant id", map[string]string{"TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
			"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", "entra", ""},
		{"tenant id keeps a CA file", map[string]string{"TENANT_ID": "t1", "DEVIDP_CA_FILE": "/x/ca.pem"},
			"https://login.microsoftonline.com/t1", "entra", "/x/ca.pem"},
		{"authority at localhost", map[string]string{"AUTHORITY": "https://localhost:9443/t1"},
			"https://localhost:9443/t1", "local", ".devidp/ca.pem"},
		{"authority at 127.0.0.1", map[string]string{"AUTHORITY": "https://127.0.0.1:8443/t1", "DEVIDP_CA_FILE": "ca.pem"},
			"https://127.0.0.1:8443/t1", "local", "ca.pem"},
		{"authority wins over tenant id", map[string]string{"AUTHORITY": "https://localhost:8443/t1", "TENANT_ID": "t2"},
			"https://localhost:8443/t1", "local", ".devidp/ca.pem"},
		{"other authority", map[string]string{"AUTHORITY": "https://login.microsoftonline.com/organizations"},
			"https://login.microsoftonline.com/organizations", "entra", ""},
		{"look-alike host", map[string]string{"AUTHORITY": "https://localhost.example.com/t1"},
			"https://localhost.example.com/t1", "entra", ""},
		{"plain http localhost is not the emulator", map[string]string{"AUTHORITY": "http://localhost:8443/t1"},
			"http://localhost:8443/t1", "entra", ""},
	}
	for _, tc := range cases {
		a, m, ca := ResolveAuthority(func(k string) string { return tc.env[k] })
		if a != tc.authority || m != tc.mode || ca != tc.caFile {
			t.Errorf("%s: got (%q, %q, %q), want (%q, %q, %q)", tc.name, a, m, ca, tc.authority, tc.mode, tc.caFile)
		}
	}
}

func TestOrAndList(t *testing.T) {
	if Or("", "d") != "d" || Or("v", "d") != "v" || Or(" ", "d") != " " {
		t.Error("Or")
	}
	for in, want := range map[string][]string{
		"":                    {},
		" , ,":                {},
		"a":                   {"a"},
		"a,b c,,  d":          {"a", "b", "c", "d"},
		"2.0, 1.0":            {"2.0", "1.0"},
		"http://x:1,http://y": {"http://x:1", "http://y"},
	} {
		got := List(in)
		if got == nil || !slices.Equal(got, want) {
			t.Errorf("List(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestWaitForFile(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.pem")

	// An empty path (no CA file configured) returns at once.
	start := time.Now()
	WaitForFile(context.Background(), "", time.Minute, log)
	if time.Since(start) > time.Second {
		t.Fatal("WaitForFile waited for an empty path")
	}

	// Present: returns at once, logs nothing.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	WaitForFile(context.Background(), path, 5*time.Second, log)
	if time.Since(start) > time.Second || buf.Len() != 0 {
		t.Fatalf("present file: %v, log %q", time.Since(start), buf.String())
	}

	// Appears later: returns soon after, having logged the wait once.
	late := filepath.Join(dir, "late.pem")
	timer := time.AfterFunc(600*time.Millisecond, func() { _ = os.WriteFile(late, []byte("x"), 0o600) })
	defer timer.Stop()
	start = time.Now()
	WaitForFile(context.Background(), late, 10*time.Second, log)
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("late file: returned after %v", d)
	}
	if n := strings.Count(buf.String(), "waiting for "+late+" (start devidp, or set DEVIDP_CA_FILE)"); n != 1 {
		t.Fatalf("logged the wait %d times: %q", n, buf.String())
	}

	// Never appears: gives up at max.
	start = time.Now()
	WaitForFile(context.Background(), filepath.Join(dir, "never.pem"), 300*time.Millisecond, log)
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("max: returned after %v", d)
	}

	// Cancelled: returns when the context ends, long before max.
	ctx, cancel := context.WithCancel(context.Background())
	timer2 := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer2.Stop()
	start = time.Now()
	WaitForFile(ctx, filepath.Join(dir, "never.pem"), time.Minute, log)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel: returned after %v", d)
	}
}

func TestIdPClient(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")

	// Entra mode does not wait for the file: a missing one is an error at once.
	start := time.Now()
	if _, err := IdPClient(context.Background(), ModeEntra, caFile, log); err == nil || time.Since(start) > time.Second {
		t.Fatalf("entra mode, missing CA file: err %v after %v", err, time.Since(start))
	}

	// Local mode waits for the emulator to write it, then trusts it.
	timer := time.AfterFunc(400*time.Millisecond, func() { _ = os.WriteFile(caFile, caPEM, 0o600) })
	defer timer.Stop()
	c, err := IdPClient(context.Background(), ModeLocal, caFile, log)
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 10*time.Second {
		t.Errorf("timeout %v", c.Timeout)
	}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
