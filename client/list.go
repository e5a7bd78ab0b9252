package client

// Session list page sizes.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)
