package main

import "github.com/entra-go/secure-api/upstream/graph"

// directoryLookup returns profiles from the directory file; until the
// emulator's directory loader is available, profiles come from token claims.
func directoryLookup(path string) (graph.LookupFunc, error) {
	return nil, nil
}
