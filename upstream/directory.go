package main

import (
	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/upstream/graph"
)

// directoryLookup serves profiles from the directory file the emulator
// serves (path, or the shipped default directory when empty). Users not in it
// (a real tenant) get a profile from their token's claims.
func directoryLookup(path string) (graph.LookupFunc, error) {
	dir := entraemu.DefaultDirectory()
	if path != "" {
		var err error
		if dir, err = entraemu.LoadDirectory(path); err != nil {
			return nil, err
		}
	}
	return func(oid string) (graph.User, bool) {
		u := dir.User(oid)
		if u == nil || u.OID != oid {
			return graph.User{}, false
		}
		return graph.User{ID: u.OID, DisplayName: u.DisplayName, UserPrincipalName: u.UPN, Mail: u.Mail,
			GivenName: u.GivenName, Surname: u.Surname, JobTitle: u.JobTitle}, true
	}, nil
}
