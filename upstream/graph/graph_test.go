package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMeHasGraphShapeFromDirectoryThenClaims(t *testing.T) {
	dir := map[string]User{"oid-1": {ID: "oid-1", DisplayName: "Dev Reader", UserPrincipalName: "reader@dev.test",
		Mail: "reader@dev.test", GivenName: "Dev", Surname: "Reader", JobTitle: "Reader"}}
	lookup := func(oid string) (User, bool) { u, ok := dir[oid]; return u, ok }
	var caller Caller
	h := MeHandler(func(*http.Request) (Caller, bool) { return caller, caller.OID != "" }, lookup)
	get := func() (int, map[string]any) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://localhost:5051/v1.0/me", nil))
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	if code, _ := get(); code != 401 {
		t.Fatalf("no caller: %d", code)
	}
	caller = Caller{OID: "oid-1", UPN: "someone-else@x"}
	code, m := get()
	if code != 200 || m["id"] != "oid-1" || m["displayName"] != "Dev Reader" || m["jobTitle"] != "Reader" ||
		m["userPrincipalName"] != "reader@dev.test" || m["@odata.context"] != "http://localhost:5051/v1.0/$metadata#users/$entity" {
		t.Fatalf("%d %v", code, m)
	}
	for _, k := range []string{"mobilePhone", "officeLocation", "preferredLanguage"} {
		if v, present := m[k]; !present || v != nil {
			t.Errorf("%s: Graph sends null, got %v (present %v)", k, v, present)
		}
	}
	if phones, ok := m["businessPhones"].([]any); !ok || len(phones) != 0 {
		t.Errorf("businessPhones %v", m["businessPhones"])
	}
	caller = Caller{OID: "oid-2", UPN: "new@dev.test", Name: "New User", GivenName: "New", FamilyName: "User"}
	code, m = get()
	if code != 200 || m["id"] != "oid-2" || m["displayName"] != "New User" || m["surname"] != "User" || m["mail"] != nil {
		t.Fatalf("claims fallback: %d %v", code, m)
	}
}
