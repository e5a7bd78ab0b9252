package domain

import (
	"strings"
	"unicode/utf8"
)

// Limits on paths. They bound the work a single request can cause and are
// documented in docs/api.md.
const (
	MaxPathBytes      = 4096
	MaxComponentBytes = 255
	MaxPathDepth      = 64
)

// CleanPath normalises a session path: relative to the session root, with or
// without a leading "/", no "." or empty components, no "..", no NUL, valid
// UTF-8, within the length and depth limits. The root is "".
func CleanPath(p string) (string, error) {
	if isCleanASCII(p) {
		// Nearly every path a client sends is already in this form: no
		// split, no join, no allocation.
		return p, nil
	}
	return cleanPath(p)
}

// isCleanASCII reports whether p is a non-root path of printable ASCII that
// cleanPath would return unchanged. It answers false for anything else
// (non-ASCII included), which cleanPath then decides.
func isCleanASCII(p string) bool {
	if p == "" || len(p) > MaxPathBytes {
		return false
	}
	depth, start := 1, 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		case c == '/':
			if !cleanComponent(p[start:i]) {
				return false
			}
			depth++
			start = i + 1
		}
	}
	return cleanComponent(p[start:]) && depth <= MaxPathDepth
}

// cleanComponent reports whether c may stand as it is between two slashes
// of a clean path.
func cleanComponent(c string) bool {
	return c != "" && c != "." && c != ".." && len(c) <= MaxComponentBytes
}

// cleanPath is CleanPath for any input.
func cleanPath(p string) (string, error) {
	if len(p) > MaxPathBytes {
		return "", Errorf(CodeInvalidArgument, "path is longer than %d bytes", MaxPathBytes)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", Errorf(CodeInvalidArgument, "path contains a NUL byte")
	}
	if !utf8.ValidString(p) {
		return "", Errorf(CodeInvalidArgument, "path is not valid UTF-8")
	}
	if strings.IndexByte(p, '\\') >= 0 {
		return "", Errorf(CodeInvalidArgument, "path contains a backslash")
	}
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", Errorf(CodeInvalidArgument, "path %q escapes the session root", p)
		}
		if len(c) > MaxComponentBytes {
			return "", Errorf(CodeInvalidArgument, "path component longer than %d bytes", MaxComponentBytes)
		}
		for _, r := range c {
			if r < 0x20 || r == 0x7f {
				return "", Errorf(CodeInvalidArgument, "path contains a control character")
			}
		}
		out = append(out, c)
	}
	if len(out) > MaxPathDepth {
		return "", Errorf(CodeInvalidArgument, "path is deeper than %d components", MaxPathDepth)
	}
	return strings.Join(out, "/"), nil
}

// CleanNonRoot is CleanPath that refuses the root itself.
func CleanNonRoot(p string) (string, error) {
	c, err := CleanPath(p)
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", Errorf(CodeInvalidArgument, "path must name an entry below the root")
	}
	return c, nil
}

// splitPath returns the components of a clean path.
func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// parentOf returns the parent directory and base name of a clean path.
func parentOf(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// isWithin reports whether clean path p is base or below it.
func isWithin(p, base string) bool {
	if base == "" {
		return true
	}
	return p == base || strings.HasPrefix(p, base+"/")
}
