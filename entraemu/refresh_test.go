package entraemu_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/entra-go/secure-api/entraemu"
)

// A failed refresh-token redemption leaves the token valid (as Entra does):
// only a successful one spends (rotates) it.
func TestFailedRefreshKeepsTheToken(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)

	t.Run("wrong scope then right scope", func(t *testing.T) {
		first := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.CLIClientID}, "refresh_token": {first.RefreshToken},
			"scope": {entraemu.APIAppIDURI + "/NoSuchScope openid offline_access profile"}}
		if st, b := ts.PostToken(t, form); st != 400 || b["error"] != "invalid_scope" {
			t.Fatalf("unknown scope: %d %v", st, b)
		}
		form.Set("scope", apiScope+" openid offline_access profile")
		st, b := ts.PostToken(t, form)
		if st != 200 || b["access_token"] == nil {
			t.Fatalf("retry with the right scope: %d %v", st, b)
		}
		// Spent on success: reuse is refused as before.
		status, body := postRaw(t, ts, form.Encode(), nil)
		checkEntraError(t, status, body, 400, "invalid_grant", 70000)
	})

	t.Run("OBO refresh token without then with the secret", func(t *testing.T) {
		user := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
		secret := secretOf(t, entraemu.APIClientID)
		st, obo := ts.PostToken(t, oboForm(secret, user.AccessToken))
		rt, _ := obo["refresh_token"].(string)
		if st != 200 || rt == "" {
			t.Fatalf("OBO: %d %v", st, obo)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.APIClientID}, "refresh_token": {rt},
			"scope": {graphScope + " openid offline_access profile"}}
		status, body := postRaw(t, ts, form.Encode(), nil)
		checkEntraError(t, status, body, 401, "invalid_client", 7000218)
		form.Set("client_secret", secret)
		if st, b := ts.PostToken(t, form); st != 200 || b["access_token"] == nil {
			t.Fatalf("retry with the secret: %d %v", st, b)
		}
	})

	t.Run("SPA refresh token without then with Origin", func(t *testing.T) {
		tok := ts.AuthCodeToken(t, entraemu.SPAClientID, spaRedirect, "reader@dev.test", "dev-password", []string{apiScope}, "")
		if tok.RefreshToken == "" {
			t.Fatal("no SPA refresh token")
		}
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.SPAClientID}, "refresh_token": {tok.RefreshToken},
			"scope": {apiScope + " openid offline_access profile"}}
		status, body := postRaw(t, ts, form.Encode(), nil)
		checkEntraError(t, status, body, 400, "invalid_request", 9002327)
		if st, b := spaRefresh(t, ts, tok.RefreshToken, apiScope); st != 200 || b["access_token"] == nil {
			t.Fatalf("retry cross-origin: %d %v", st, b)
		}
		status, body = postRaw(t, ts, form.Encode(), http.Header{"Origin": {spaOrigin}})
		checkEntraError(t, status, body, 400, "invalid_grant", 70000)
	})

	t.Run("concurrent double redemption", func(t *testing.T) {
		first := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.CLIClientID}, "refresh_token": {first.RefreshToken},
			"scope": {apiScope + " openid offline_access profile"}}
		const n = 8
		var wg sync.WaitGroup
		statuses := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := ts.Client.PostForm(ts.TokenEndpoint(), form)
				if err != nil {
					return // statuses[i] stays 0: reported below
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			if st == 200 {
				ok++
			} else if st != 400 {
				t.Errorf("status %d", st)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent redemptions succeeded, want 1 (%v)", ok, n, statuses)
		}
	})
}
