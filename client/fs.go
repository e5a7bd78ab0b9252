package client

// Manifest page sizes.
const (
	DefaultManifestLimit = 1000
	MaxManifestLimit     = 10000
)
