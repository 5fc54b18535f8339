package static

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The vendored msal-browser must be the version package.json pins, with the
// hashes its README records: bumping one without rerunning
// scripts/vendor-msal.sh fails here.
func TestVendoredMSALMatchesPin(t *testing.T) {
	raw, err := os.ReadFile("../package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	pin := pkg.DevDependencies["@azure/msal-browser"]
	if pin == "" || strings.ContainsAny(pin, "^~<>=* ") {
		t.Fatalf("@azure/msal-browser must be pinned to an exact version, got %q", pin)
	}
	readme, err := os.ReadFile("vendor/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "@azure/msal-browser@"+pin+"`") {
		t.Errorf("vendor/README.md does not name msal-browser %s", pin)
	}
	for _, name := range []string{"vendor/msal-browser.min.js", "vendor/msal-redirect-bridge.min.js", "vendor/LICENSE"} {
		b, err := Files.ReadFile(name)
		if err != nil {
			t.Fatalf("%s not embedded: %v", name, err)
		}
		if strings.HasSuffix(name, ".js") && !strings.HasPrefix(string(b), "/*! @azure/msal-browser v"+pin+" ") {
			t.Errorf("%s is not msal-browser %s: %.60q", name, pin, b)
		}
		sum := sha256.Sum256(b)
		if !strings.Contains(string(readme), hex.EncodeToString(sum[:])) {
			t.Errorf("%s: sha256 %x not recorded in vendor/README.md", name, sum)
		}
	}
}
