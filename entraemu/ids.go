package entraemu

// Ids of the shipped default directory (DESIGN §3). Ids only: secrets and
// passwords live in the directory JSON (data), read them from
// DefaultDirectory().
const (
	DefaultTenantID = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"
	SPAClientID     = "88374b94-683c-41e9-a4d0-40a9685e8661"
	APIClientID     = "68fee0a8-293c-4256-8007-b5453b634b61"
	APIAppIDURI     = "api://68fee0a8-293c-4256-8007-b5453b634b61"
	GraphAppID      = "00000003-0000-0000-c000-000000000000"
	GraphAppIDURI   = "https://graph.microsoft.com"
	DaemonClientID  = "e3a89aa0-95e6-48ac-b4d4-ed40a5372267"
	CLIClientID     = "55690640-1531-41cc-ac93-df59fb73fc3f"

	ReaderOID = "e35a8c02-2ed7-489f-ac07-c14c1234b3c6"
	AdminOID  = "74b3dcd2-d9b5-42bb-be4c-ac96ec17444b"
	MFAOID    = "38605525-eb95-41ed-8e86-ae2dabdce1b8"

	// MFAPolicyID is the conditional-access policy of the default directory
	// that requires MFA for the Graph-compatible upstream (mfa@dev.test only).
	MFAPolicyID = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
)
