package entraemu_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/entraemu"
)

func TestDefaultDirectory(t *testing.T) {
	t.Parallel()
	d := entraemu.DefaultDirectory()
	if d.Tenant.ID != entraemu.DefaultTenantID {
		t.Fatal(d.Tenant.ID)
	}
	for _, id := range []string{entraemu.SPAClientID, entraemu.APIClientID, entraemu.GraphAppID, entraemu.DaemonClientID, entraemu.CLIClientID} {
		if d.App(id) == nil {
			t.Errorf("app %s missing", id)
		}
	}
	for upn, oid := range map[string]string{"reader@dev.test": entraemu.ReaderOID, "admin@dev.test": entraemu.AdminOID, "mfa@dev.test": entraemu.MFAOID} {
		if u := d.User(upn); u == nil || u.OID != oid || d.User(oid) != u {
			t.Errorf("user %s", upn)
		}
	}
	// Each call is a fresh copy that tests may change.
	d.App(entraemu.APIClientID).Secrets = nil
	if len(entraemu.DefaultDirectory().App(entraemu.APIClientID).Secrets) == 0 {
		t.Fatal("DefaultDirectory shares state between calls")
	}
}

func TestDirectoryValidationNamesTheField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		edit func(m map[string]any)
		want string
	}{
		{func(m map[string]any) {
			app(m, 0)["redirectUris"].(map[string]any)["spa"].([]any)[0] = "localhost:30662"
		},
			"directory: apps[0].redirectUris.spa[0]: must be an absolute http(s) URL"},
		{func(m map[string]any) { m["tenant"].(map[string]any)["id"] = "x" }, "directory: tenant.id: must be a GUID"},
		{func(m map[string]any) { app(m, 1)["accessTokenAcceptedVersion"] = 3 }, "directory: apps[1].accessTokenAcceptedVersion: must be 1, 2 or absent"},
		{func(m map[string]any) { app(m, 3)["grants"].([]any)[0].(map[string]any)["roles"] = []any{"Nope"} }, "directory: apps[3].grants[0].roles[0]: app \"68fee0a8-293c-4256-8007-b5453b634b61\" defines no application app role \"Nope\""},
		{func(m map[string]any) { m["users"].([]any)[1].(map[string]any)["oid"] = "74b3dcd2" }, "directory: users[1].oid: must be a GUID"},
		{func(m map[string]any) { app(m, 1)["certificates"] = []any{"not pem"} }, "directory: apps[1].certificates[0]: must be a PEM CERTIFICATE block"},
		{func(m map[string]any) {
			m["conditionalAccessPolicies"].([]any)[0].(map[string]any)["users"] = []any{"ghost@dev.test"}
		}, "directory: conditionalAccessPolicies[0].users[0]: no user \"ghost@dev.test\" in the directory"},
		{func(m map[string]any) { m["apps"].([]any)[0].(map[string]any)["redirectUri"] = "typo" }, "directory: apps[0].redirectUri: unknown field"},
	}
	for _, c := range cases {
		var m map[string]any
		if err := json.Unmarshal(entraemu.DefaultDirectoryJSON(), &m); err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		b, _ := json.Marshal(m)
		path := filepath.Join(t.TempDir(), "dir.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := entraemu.LoadDirectory(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

func app(m map[string]any, i int) map[string]any { return m["apps"].([]any)[i].(map[string]any) }

func TestSigningKeysPersistInKeyDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := entraemu.New(entraemu.Config{IssuerHost: "localhost:8443", KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	old := a.ActiveKID()
	kid, err := a.RotateKeys(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "signing-keys.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	b, err := entraemu.New(entraemu.Config{IssuerHost: "localhost:8443", KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b.ActiveKID() != kid || !slices.Equal(b.PublishedKIDs(), []string{kid, old}) {
		t.Fatalf("after restart: active %s published %v, want %s then %s", b.ActiveKID(), b.PublishedKIDs(), kid, old)
	}
}

// Every decode error names where it is: the field path for schema errors,
// line:column for syntax errors.
func TestDirectoryDecodeErrorsNameThePath(t *testing.T) {
	t.Parallel()
	cases := []struct{ doc, want string }{
		{`{"users":[{"upn":"a@dev.test","passwd":"x"}]}`, "directory: users[0].passwd: unknown field"},
		{`{"users":[{"upn":"a@dev.test"},{"mfaRegistered":"yes"}]}`, "directory: users[1].mfaRegistered: want boolean, got string"},
		{`{"apps":[{"appId":"x"},{"appId":"y","redirectUris":{"spa":"http://localhost"}}]}`, "directory: apps[1].redirectUris.spa: want array, got string"},
		{`{"apps":[{"accessTokenAcceptedVersion":"2"}]}`, "directory: apps[0].accessTokenAcceptedVersion: want integer, got string"},
		{`{"apps":[{"accessTokenAcceptedVersion":2.5}]}`, "directory: apps[0].accessTokenAcceptedVersion: want integer, got 2.5"},
		{`{"apps":[{"scopes":[{"value":"a"},{"value":"b","typo":1}]}]}`, "directory: apps[0].scopes[1].typo: unknown field"},
		{`{"conditionalAccessPolicies":[{"users":"All"}]}`, "directory: conditionalAccessPolicies[0].users: want array, got string"},
		{`{"tenant":"x"}`, "directory: tenant: want object, got string"},
		{`{"tenantt":{}}`, "directory: tenantt: unknown field"},
		{`[]`, "directory: want object, got array"},
		{"{\n  \"users\": [\n    {\"upn\": \"a\"", "directory: line 3:"},
		{"{\n  \"users\": [\n    {\"upn\" \"a\"}]}", "directory: line 3:12: invalid JSON: invalid character '\"' after object key"},
		{`{"users":[]} x`, "directory: line 1:14: invalid JSON: invalid character 'x' after top-level value"},
		{``, "directory: line 1:1: invalid JSON: unexpected end of JSON input"},
	}
	for _, c := range cases {
		_, err := entraemu.ParseDirectory([]byte(c.doc))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n  got  %v\n  want %q", c.doc, err, c.want)
		}
	}
	// Case-insensitive keys decode as encoding/json decodes them: not an error
	// of shape (the directory then fails validation for what is missing).
	if _, err := entraemu.ParseDirectory([]byte(`{"Tenant":{"ID":"x"}}`)); err == nil || !strings.Contains(err.Error(), "tenant.id: must be a GUID") {
		t.Errorf("case-folded keys: %v", err)
	}
}
