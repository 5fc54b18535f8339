package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/entraemu"
)

// GET /api against the emulator over HTTPS with real tokens (Milestone 2).
func TestAPIWithEmulator(t *testing.T) {
	idp := entraemu.NewTestServer(t)
	cfg, err := LoadConfig(func(k string) string { return map[string]string{"AUTHORITY": idp.Authority}[k] })
	if err != nil {
		t.Fatal(err)
	}
	v, err := apiauth.New(apiauth.Config{Authority: cfg.Authority, ClientID: cfg.ClientID, HTTPClient: idp.Client, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := contextTimeout(10 * time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, handler(cfg, v, nil, nil))

	user := idp.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	resp, body := do(t, "GET", srv+"/api", map[string]string{"Authorization": "Bearer " + user})
	var got apiResponse
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || got.Caller != "user" || got.ObjectID != entraemu.ReaderOID ||
		got.Username != "reader@dev.test" || got.Audience != entraemu.APIClientID || got.Version != "2.0" || got.TenantID != entraemu.DefaultTenantID {
		t.Fatalf("delegated: %d %s", resp.StatusCode, body)
	}
	daemonSecret := entraemu.DefaultDirectory().App(entraemu.DaemonClientID).Secrets[0]
	app := idp.ClientCredentialsToken(t, entraemu.DaemonClientID, daemonSecret, entraemu.APIAppIDURI+"/.default").AccessToken
	resp, body = do(t, "GET", srv+"/api", map[string]string{"Authorization": "Bearer " + app})
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || got.Caller != "app" || got.Roles[0] != roleDemoReadAll {
		t.Fatalf("app-only: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", srv+"/api", map[string]string{"Authorization": "Bearer " + user[:len(user)-3] + "AAA"})
	if resp.StatusCode != 401 {
		t.Fatalf("tampered: %d %s", resp.StatusCode, body)
	}
}
