package domain

import (
	"regexp"
	"strconv"
)

// Limits on secrets.
const (
	// MaxSecretBytes bounds a secret's value.
	MaxSecretBytes = 64 * 1024
	// MaxSecretsPerScope bounds the secrets of one tenant or session.
	MaxSecretsPerScope = 1000
)

// secretNameRe is the shape of a secret's name: an environment variable's,
// so that a run can inject it under its own name.
var secretNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// ValidSecretName checks a secret's name. The message never repeats the
// name back, in case a caller mistook a value for a name.
func ValidSecretName(name string) error {
	if !secretNameRe.MatchString(name) {
		return Errorf(CodeInvalidArgument, "a secret's name must match [A-Za-z_][A-Za-z0-9_]* (at most 128 characters)")
	}
	return nil
}

// ValidSecretValue checks a secret's value; the message never includes it.
func ValidSecretValue(v []byte) error {
	if len(v) == 0 {
		return Errorf(CodeInvalidArgument, "a secret's value must not be empty")
	}
	if len(v) > MaxSecretBytes {
		return Errorf(CodeTooLarge, "a secret's value is larger than %d bytes", MaxSecretBytes)
	}
	return nil
}

// SecretAAD binds a sealed value to its tenant, scope, name and version,
// so that a value copied to another secret's key does not open.
func SecretAAD(tenant, session, name string, version uint64) []byte {
	return []byte("strand-secret\x00" + tenant + "\x00" + session + "\x00" + name + "\x00" + strconv.FormatUint(version, 10))
}
