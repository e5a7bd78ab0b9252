// Package keyring seals secrets at rest with AES-256-GCM under keys the
// operator supplies, and opens them again under any key it still holds,
// so keys can be rotated: add a new key first (it seals from then on),
// reseal every value (secret.rekey), then drop the old key.
//
// A key file holds one key per line, "ID BASE64" (32 bytes of key, standard
// base64), newest first; blank lines and lines starting with # are ignored.
// STRAND_SECRET_KEY holds the same lines, or entries separated by commas.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Key is one named key.
type Key struct {
	ID   string
	aead cipher.AEAD
}

// Ring holds the keys that open sealed values; the first seals new ones.
type Ring struct {
	keys []Key
}

// Sealed is a value sealed under one key.
type Sealed struct {
	Key        string `json:"key"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ct"`
}

// ErrUnknownKey means a value was sealed under a key the ring no longer has.
var ErrUnknownKey = errors.New("sealed under a key this ring does not hold")

// Parse reads keys from the text of a key file or of STRAND_SECRET_KEY.
func Parse(text string) (*Ring, error) {
	r := &Ring{}
	seen := map[string]bool{}
	var entries []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			entries = append(entries, strings.Split(line, ",")...)
		}
	}
	for _, line := range entries {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		id, b64, ok := strings.Cut(line, " ")
		if !ok {
			id, b64, ok = strings.Cut(line, ":")
		}
		if !ok {
			return nil, fmt.Errorf("a key line must be \"ID BASE64\" (line %d of the key list)", len(r.keys)+1)
		}
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !idRe.MatchString(id) {
			return nil, fmt.Errorf("key id must match [A-Za-z0-9][A-Za-z0-9_.-]* (key %d)", len(r.keys)+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("key id %s appears twice", id)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("key %s must be %d bytes in standard base64", id, KeySize)
		}
		k, err := newKey(id, raw)
		if err != nil {
			return nil, err
		}
		seen[id] = true
		r.keys = append(r.keys, k)
	}
	if len(r.keys) == 0 {
		return nil, errors.New("no key given")
	}
	return r, nil
}

func newKey(id string, raw []byte) (Key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", id, err)
	}
	return Key{ID: id, aead: aead}, nil
}

// Load reads a key file. It refuses a file that others may read.
func Load(path string) (*Ring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s is readable by others (mode %o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	r, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return r, nil
}

// LoadOrCreate reads a key file, or writes one with a new random key (mode
// 0600) when there is none: the embedded default's zero set-up.
func LoadOrCreate(path string) (*Ring, error) {
	if _, err := os.Stat(path); err == nil {
		return Load(path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	line, err := NewKeyLine("k1")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if _, err := f.WriteString("# Strand secret keys, newest first: ID BASE64\n" + line + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	return Load(path)
}

// NewKeyLine returns a key file line with a new random key.
func NewKeyLine(id string) (string, error) {
	if !idRe.MatchString(id) {
		return "", fmt.Errorf("key id must match [A-Za-z0-9][A-Za-z0-9_.-]*")
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return id + " " + base64.StdEncoding.EncodeToString(raw), nil
}

// Active returns the id of the key that seals new values.
func (r *Ring) Active() string { return r.keys[0].ID }

// IDs returns the ids of the ring's keys, newest first.
func (r *Ring) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.ID
	}
	return out
}

// Seal encrypts a value under the active key. aad binds the value to where
// it is stored (tenant, scope, name, version), so a sealed value moved to
// another name does not open.
func (r *Ring) Seal(plain, aad []byte) (Sealed, error) {
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	return Sealed{Key: k.ID, Nonce: nonce, Ciphertext: k.aead.Seal(nil, nonce, plain, aad)}, nil
}

// Open decrypts a sealed value under whichever key sealed it.
func (r *Ring) Open(s Sealed, aad []byte) ([]byte, error) {
	for _, k := range r.keys {
		if k.ID != s.Key {
			continue
		}
		if len(s.Nonce) != k.aead.NonceSize() {
			return nil, errors.New("sealed value has a bad nonce")
		}
		plain, err := k.aead.Open(nil, s.Nonce, s.Ciphertext, aad)
		if err != nil {
			return nil, errors.New("sealed value does not open: altered, moved or under another key of the same id")
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w (%s)", ErrUnknownKey, s.Key)
}
