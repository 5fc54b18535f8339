// Package graph serves the Microsoft Graph-shaped profile endpoint of the
// upstream service: GET /v1.0/me answers the signed-in caller's user object
// in Graph's JSON shape, so that demoapi's code calls this service and the
// real Graph alike. It knows nothing of token validation: the caller's
// identity comes from the protecting middleware through CallerFunc.
package graph

import (
	"encoding/json"
	"net/http"
)

// User is a directory user's profile, the fields Graph's /me returns by
// default.
type User struct {
	ID                string
	DisplayName       string
	UserPrincipalName string
	Mail              string
	GivenName         string
	Surname           string
	JobTitle          string
	OfficeLocation    string
	MobilePhone       string
	PreferredLanguage string
	BusinessPhones    []string
}

// Caller is the validated caller as read from the access token.
type Caller struct {
	OID        string // oid
	UPN        string // upn, unique_name or preferred_username
	Name       string // name
	GivenName  string // given_name
	FamilyName string // family_name
}

// LookupFunc finds a user by object id; ok is false when unknown.
type LookupFunc func(oid string) (User, bool)

// CallerFunc reads the validated caller from the request context; ok is
// false when there is none (the handler then answers 401, failing closed).
type CallerFunc func(r *http.Request) (Caller, bool)

// me is Graph's JSON shape for a user: absent values are null, not
// omitted, as Graph sends them.
type me struct {
	Context           string   `json:"@odata.context"`
	BusinessPhones    []string `json:"businessPhones"`
	DisplayName       *string  `json:"displayName"`
	GivenName         *string  `json:"givenName"`
	JobTitle          *string  `json:"jobTitle"`
	Mail              *string  `json:"mail"`
	MobilePhone       *string  `json:"mobilePhone"`
	OfficeLocation    *string  `json:"officeLocation"`
	PreferredLanguage *string  `json:"preferredLanguage"`
	Surname           *string  `json:"surname"`
	UserPrincipalName *string  `json:"userPrincipalName"`
	ID                string   `json:"id"`
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Profile is the Graph-shaped user for c: the directory entry for c.OID when
// lookup knows it, else what the token says. context is the @odata.context
// URL.
func Profile(c Caller, lookup LookupFunc, context string) any {
	u, ok := User{}, false
	if lookup != nil {
		u, ok = lookup(c.OID)
	}
	if !ok {
		u = User{ID: c.OID, DisplayName: c.Name, UserPrincipalName: c.UPN, GivenName: c.GivenName, Surname: c.FamilyName}
	}
	phones := u.BusinessPhones
	if phones == nil {
		phones = []string{}
	}
	return me{
		Context: context, BusinessPhones: phones, DisplayName: ptr(u.DisplayName), GivenName: ptr(u.GivenName),
		JobTitle: ptr(u.JobTitle), Mail: ptr(u.Mail), MobilePhone: ptr(u.MobilePhone), OfficeLocation: ptr(u.OfficeLocation),
		PreferredLanguage: ptr(u.PreferredLanguage), Surname: ptr(u.Surname), UserPrincipalName: ptr(u.UserPrincipalName),
		ID: u.ID,
	}
}

// MeHandler serves GET /v1.0/me. Mount it behind the token validation that
// enforces audience and the User.Read scope.
func MeHandler(caller CallerFunc, lookup LookupFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := caller(r)
		if !ok || c.OID == "" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}`, http.StatusUnauthorized)
			return
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		ctx := scheme + "://" + r.Host + "/v1.0/$metadata#users/$entity"
		w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(Profile(c, lookup, ctx))
	})
}
