package main

import "errors"

// localDevSecret is the API's dev secret from the emulator's directory data
// (local mode only, when no credential is configured).
func localDevSecret(clientID string) (string, error) {
	return "", errors.New("local dev secret: the emulator's directory is not available in this build; set API_CLIENT_SECRET")
}
