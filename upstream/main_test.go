package main

import (
	"slices"
	"testing"
)

func TestLoadConfigDefaultsToGraphShape(t *testing.T) {
	c, err := LoadConfig(func(string) string { return "" })
	if err != nil || c.Mode != "local" || c.Authority != localAuthority || c.ClientID != graphAppID ||
		c.Scope != "User.Read" || c.Addr != "localhost:5051" || c.CAFile != ".devidp/ca.pem" {
		t.Fatalf("%+v %v", c, err)
	}
	if !slices.Contains(c.Audiences, "https://graph.microsoft.com") || !slices.Contains(c.Audiences, "https://graph.microsoft.com/") {
		t.Fatalf("audiences %v", c.Audiences)
	}
	env := map[string]string{"TENANT_ID": "t1", "UPSTREAM_AUDIENCE": "api://mine", "UPSTREAM_SCOPE": "Profile.Read"}
	c, _ = LoadConfig(func(k string) string { return env[k] })
	if c.Mode != "entra" || c.Authority != "https://login.microsoftonline.com/t1" || c.Scope != "Profile.Read" ||
		!slices.Equal(c.Audiences, []string{"api://mine"}) {
		t.Fatalf("%+v", c)
	}
}
