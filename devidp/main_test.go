package main

import (
	"net"
	"testing"
)

func TestFlagsAndEnv(t *testing.T) {
	t.Setenv("DEVIDP_ADDR", "localhost:9443")
	t.Setenv("DEVIDP_STATE_DIR", "/tmp/x")
	o, err := parseFlags(nil)
	if err != nil || o.addr != "localhost:9443" || o.stateDir != "/tmp/x" || o.directory != "" {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = parseFlags([]string{"-addr", "127.0.0.1:0", "-issuer-host", "localhost:1"})
	if err != nil || o.addr != "127.0.0.1:0" || o.issuerHost != "localhost:1" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := parseFlags([]string{"extra"}); err == nil {
		t.Fatal("stray argument accepted")
	}
}

func TestListenLocalhostIsLoopbackOnly(t *testing.T) {
	ls, err := listen("localhost", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("listening on %v", ip)
		}
		l.Close()
	}
}
