package client

import "context"

// fs.search page sizes and the size of what one match carries.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 1000
	MaxSearchContext   = 10
	MaxSearchLineBytes = 500
)

// SearchRequest is the body of fs.search: a regular expression over file
// contents (grep), a glob over paths (find), or both.
type SearchRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
	// Pattern is a regular expression (RE2 syntax) matched line by line
	// against the content of regular files; empty lists paths only.
	Pattern string `json:"pattern,omitempty"`
	// Literal takes Pattern as a plain string.
	Literal bool `json:"literal,omitempty"`
	// IgnoreCase folds case in Pattern and in every glob.
	IgnoreCase bool `json:"ignore_case,omitempty"`
	// Glob selects paths ("**/*.go", "src/*/main.go"); a glob without a
	// "/" matches the base name at any depth ("*.md").
	Glob string `json:"glob,omitempty"`
	// Prefix keeps paths below a directory or starting with a name prefix.
	Prefix string `json:"prefix,omitempty"`
	// Include keeps only paths matching one of these globs; Exclude drops
	// paths matching any of them (same rules as Glob).
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// Context is the number of lines given before and after each match.
	Context int `json:"context,omitempty"`
	// Limit bounds the matches of one page (paths, without a pattern);
	// 0 means DefaultSearchLimit.
	Limit int `json:"limit,omitempty"`
	// Cursor continues a search where the page that gave it stopped.
	Cursor string `json:"cursor,omitempty"`
}

// SearchReply answers fs.search. Files come in tree order; each match of
// a content search names its line (from 1) and byte column (from 1).
type SearchReply struct {
	Files []SearchFile `json:"files"`
	// Matches counts the matches of this page (the files, without a
	// pattern).
	Matches int `json:"matches"`
	// NextCursor, when set, gives the next page.
	NextCursor string `json:"next_cursor,omitempty"`
	// Stopped says why a page ended before the tree did: "limit",
	// "size" (the reply is full), "time" or "bytes" (the bounds of one
	// request); NextCursor continues.
	Stopped       string `json:"stopped,omitempty"`
	FilesScanned  int    `json:"files_scanned"`
	BytesScanned  int64  `json:"bytes_scanned"`
	SkippedBinary int    `json:"skipped_binary,omitempty"`
	SkippedLarge  int    `json:"skipped_large,omitempty"`
	Position      uint64 `json:"position"`
	Root          string `json:"root"`
}

// SearchFile is a path found by fs.search, with its matches.
type SearchFile struct {
	Path    string        `json:"path"`
	Kind    string        `json:"kind"`
	Size    int64         `json:"size"`
	Hash    string        `json:"hash,omitempty"`
	Matches []SearchMatch `json:"matches,omitempty"`
}

// SearchMatch is one matching line. Lines longer than MaxSearchLineBytes
// are cut (Cut says so).
type SearchMatch struct {
	Line   int      `json:"line"`
	Column int      `json:"column"`
	Text   string   `json:"text"`
	Cut    bool     `json:"cut,omitempty"`
	Before []string `json:"before,omitempty"`
	After  []string `json:"after,omitempty"`
}

// Search runs fs.search: a content and/or path search of a session.
func (c *Client) Search(ctx context.Context, req SearchRequest) (SearchReply, error) {
	var r SearchReply
	return r, c.Call(ctx, FSSearch, req, &r)
}
