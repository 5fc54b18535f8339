package main

import (
	"errors"
	"os"

	"github.com/entra-go/secure-api/entraemu"
)

// localDevSecret is the API's dev secret from the emulator's directory data
// (the file devidp serves: DEVIDP_DIRECTORY, else the shipped default). Used
// only in local mode when no credential is configured: secrets stay data, not
// code.
func localDevSecret(clientID string) (string, error) {
	dir := entraemu.DefaultDirectory()
	if p := os.Getenv("DEVIDP_DIRECTORY"); p != "" {
		var err error
		if dir, err = entraemu.LoadDirectory(p); err != nil {
			return "", err
		}
	}
	app := dir.App(clientID)
	if app == nil || len(app.Secrets) == 0 {
		return "", errors.New("local mode: the emulator's directory has no secret for this API; set API_CLIENT_SECRET")
	}
	return app.Secrets[0], nil
}
