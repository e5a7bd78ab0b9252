package mcp

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Bounds of the file tools.
const (
	// maxReadBytes is the largest file read_file loads.
	maxReadBytes = 16 << 20
	// defaultReadLines is how many lines read_file shows by default.
	defaultReadLines = 2000
	// maxLineChars cuts longer lines in read_file's text.
	maxLineChars     = 2000
	defaultListLimit = 200
)

// ReadArgs are the arguments of read_file.
type ReadArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Path    string `json:"path" jsonschema:"the file's path in the session, e.g. src/main.go"`
	At      string `json:"at,omitempty" jsonschema:"read the past: a position number or a checkpoint name; omit for the head"`
	Offset  int    `json:"offset,omitempty" jsonschema:"the first line to show, from 1 (default 1)"`
	Limit   int    `json:"limit,omitempty" jsonschema:"how many lines to show (default 2000)"`
}

// ReadResult is what read_file read. The text result holds the lines,
// numbered; Hash is what edit_file and write_file take as expected_hash.
type ReadResult struct {
	Path       string `json:"path"`
	Hash       string `json:"hash"`
	Size       int64  `json:"size"`
	Position   uint64 `json:"position"`
	StartLine  int    `json:"start_line"`
	EndLine    int    `json:"end_line"`
	TotalLines int    `json:"total_lines"`
	Binary     bool   `json:"binary,omitempty"`
	Content    string `json:"content"`
}

// WriteArgs are the arguments of write_file.
type WriteArgs struct {
	Session      string `json:"session" jsonschema:"the session id"`
	Path         string `json:"path" jsonschema:"the file's path; missing directories are made"`
	Content      string `json:"content" jsonschema:"the whole new content of the file (UTF-8 text)"`
	ExpectedHash string `json:"expected_hash,omitempty" jsonschema:"the hash read_file gave: refuse with conflict if the file changed since"`
	Mode         string `json:"mode,omitempty" jsonschema:"permission bits in octal, e.g. 755 for a script (default 644)"`
	Token        string `json:"token,omitempty" jsonschema:"the token of your lock on this path, if it is locked"`
}

// EditArgs are the arguments of edit_file.
type EditArgs struct {
	Session      string `json:"session" jsonschema:"the session id"`
	Path         string `json:"path" jsonschema:"the file to edit"`
	OldString    string `json:"old_string" jsonschema:"the exact text to replace, including whitespace and indentation; it must occur exactly once unless replace_all"`
	NewString    string `json:"new_string" jsonschema:"the text to put in its place"`
	ReplaceAll   bool   `json:"replace_all,omitempty" jsonschema:"replace every occurrence of old_string"`
	ExpectedHash string `json:"expected_hash,omitempty" jsonschema:"the hash read_file gave: refuse with conflict if the file changed since"`
	Token        string `json:"token,omitempty" jsonschema:"the token of your lock on this path, if it is locked"`
}

// ChangeResult is what a change did.
type ChangeResult struct {
	Path         string `json:"path,omitempty"`
	Hash         string `json:"hash,omitempty"`
	Size         int64  `json:"size,omitempty"`
	Position     uint64 `json:"position"`
	Root         string `json:"root"`
	Replacements int    `json:"replacements,omitempty"`
}

// ListArgs2 are the arguments of list_files.
type ListFilesArgs struct {
	Session string `json:"session" jsonschema:"the session id"`
	Prefix  string `json:"prefix,omitempty" jsonschema:"a directory to list below, e.g. src (omit for the whole tree)"`
	Glob    string `json:"glob,omitempty" jsonschema:"keep paths matching this glob: ** for any depth, e.g. **/*.go; without a slash it matches base names, e.g. *.md"`
	At      string `json:"at,omitempty" jsonschema:"list the past: a position number or a checkpoint name"`
	Limit   int    `json:"limit,omitempty" jsonschema:"at most this many entries (default 200, at most 1000)"`
	Cursor  string `json:"cursor,omitempty" jsonschema:"the cursor of the previous page"`
}

// ListResult answers list_files.
type ListResult struct {
	Entries    []client.SearchFile `json:"entries"`
	NextCursor string              `json:"next_cursor,omitempty"`
	Position   uint64              `json:"position"`
}

// PathArgs name a path to make or remove.
type PathArgs struct {
	Session      string `json:"session" jsonschema:"the session id"`
	Path         string `json:"path" jsonschema:"the path"`
	Recursive    bool   `json:"recursive,omitempty" jsonschema:"remove a directory with everything below it (remove only)"`
	ExpectedHash string `json:"expected_hash,omitempty" jsonschema:"refuse with conflict unless the path still has this hash (remove only)"`
	Token        string `json:"token,omitempty" jsonschema:"the token of your lock on this path, if it is locked"`
}

// ModeArgs are the arguments of change_mode.
type ModeArgs struct {
	Session      string `json:"session" jsonschema:"the session id"`
	Path         string `json:"path" jsonschema:"the file or directory (a symbolic link's target changes)"`
	Mode         string `json:"mode" jsonschema:"permission bits in octal, e.g. 755 to make a script executable, 600 for a private file"`
	ExpectedHash string `json:"expected_hash,omitempty" jsonschema:"refuse with conflict unless the path still has this hash"`
	Token        string `json:"token,omitempty" jsonschema:"the token of your lock on this path, if it is locked"`
}

// MoveArgs are the arguments of move.
type MoveArgs struct {
	Session      string `json:"session" jsonschema:"the session id"`
	From         string `json:"from" jsonschema:"the path to move"`
	To           string `json:"to" jsonschema:"its new path"`
	ExpectedHash string `json:"expected_hash,omitempty" jsonschema:"refuse with conflict unless from still has this hash"`
	Token        string `json:"token,omitempty" jsonschema:"the token of your lock on these paths, if locked"`
}

func (s *Server) addFileTools() {
	add(s, "read_file", "Read a file",
		"Read a text file of the session, with numbered lines (cat -n style). Gives the file's hash: pass it as expected_hash to edit_file or write_file so that a change made meanwhile by someone else is refused instead of lost. For a large file, read a range with offset and limit.",
		readOnly, true, s.readFile)
	add(s, "write_file", "Write a file",
		"Create or overwrite a whole file with new content. Prefer edit_file to change part of an existing file. The old content stays in the history.",
		destructive, true, s.writeFile)
	add(s, "edit_file", "Edit a file",
		"Replace an exact string in a file: old_string must match the file's text exactly (whitespace included) and occur once, unless replace_all. Read the file first; pass its hash as expected_hash.",
		destructive, false, s.editFile)
	add(s, "list_files", "List files",
		"List the session's paths in tree order (directories end with /), optionally below a prefix and matching a glob such as **/*.go.",
		readOnly, true, s.listFiles)
	add(s, "make_directory", "Make a directory",
		"Make a directory and any missing parents.",
		additive, true, s.makeDirectory)
	add(s, "remove", "Remove a path",
		"Remove a file or symbolic link, or a directory with recursive. The history keeps it (session_restore brings it back).",
		destructive, false, s.remove)
	add(s, "move", "Move a path",
		"Move or rename a file or directory.",
		destructive, false, s.move)
	add(s, "change_mode", "Change a path's mode",
		"Set the permission bits of a file or directory (chmod), e.g. 755 to make a script executable. The content stays as it is.",
		destructive, true, s.changeMode)
}

func (s *Server) readFile(ctx context.Context, _ *call, in ReadArgs) (string, ReadResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ReadResult{}, err
	}
	if in.Offset < 0 || in.Limit < 0 {
		return "", ReadResult{}, invalid("offset and limit must not be negative")
	}
	data, rr, err := s.load(ctx, id, in.Path, client.At(in.At))
	if err != nil {
		return "", ReadResult{}, err
	}
	res := ReadResult{Path: rr.Path, Hash: rr.Hash, Size: rr.Size, Position: rr.Position}
	if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 || !utf8.Valid(data) {
		res.Binary = true
		return fmt.Sprintf("%s is binary: %d bytes, hash %s; not shown", rr.Path, rr.Size, rr.Hash), res, nil
	}
	lines := splitLines(string(data))
	res.TotalLines = len(lines)
	start := max(in.Offset, 1)
	limit := in.Limit
	if limit == 0 {
		limit = defaultReadLines
	}
	end := min(start-1+limit, len(lines))
	var b, content strings.Builder
	fmt.Fprintf(&b, "%s (hash %s, %d bytes, %d lines, position %d)\n", rr.Path, rr.Hash, rr.Size, len(lines), rr.Position)
	for i := start; i <= end; i++ {
		line := lines[i-1]
		content.WriteString(line)
		line = strings.TrimSuffix(line, "\n")
		if len(line) > maxLineChars {
			line = strings.ToValidUTF8(line[:maxLineChars], "") + " [line cut]"
		}
		fmt.Fprintf(&b, "%6d\t%s\n", i, line)
	}
	if start > end {
		fmt.Fprintf(&b, "(no lines from %d: the file has %d)\n", start, len(lines))
	} else if end < len(lines) {
		fmt.Fprintf(&b, "(lines %d-%d of %d: read on with offset %d)\n", start, end, len(lines), end+1)
	}
	res.StartLine, res.EndLine, res.Content = start, end, content.String()
	return b.String(), res, nil
}

// splitLines splits text into lines that keep their "\n".
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// load reads a whole file of at most maxReadBytes.
func (s *Server) load(ctx context.Context, id, path string, at client.At) ([]byte, client.ReadReply, error) {
	first, err := s.c.Read(ctx, client.ReadRequest{Session: id, Path: path, At: at, Length: 1})
	if err != nil {
		return nil, first, err
	}
	if first.Size > maxReadBytes {
		return nil, first, &client.Error{Code: domain.CodeTooLarge, Message: fmt.Sprintf("%s has %d bytes; read_file loads at most %d", path, first.Size, maxReadBytes)}
	}
	return s.c.ReadAll(ctx, id, first.Path, client.AtPosition(first.Position))
}

func (s *Server) writeFile(ctx context.Context, c *call, in WriteArgs) (string, ChangeResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ChangeResult{}, err
	}
	var mode uint32
	if in.Mode != "" {
		if mode, err = parseMode(in.Mode); err != nil {
			return "", ChangeResult{}, err
		}
	}
	m := c.mutation()
	m.Token = in.Token
	r, err := s.c.Write(ctx, client.WriteRequest{Mutation: m, Session: id, Path: in.Path, Content: []byte(in.Content), Mode: mode, ExpectedHash: in.ExpectedHash})
	if err != nil {
		return "", ChangeResult{}, err
	}
	return fmt.Sprintf("wrote %s: %d bytes, hash %s, position %d", r.Path, r.Size, r.Hash, r.Position), changeResult(r), nil
}

func (s *Server) editFile(ctx context.Context, c *call, in EditArgs) (string, ChangeResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ChangeResult{}, err
	}
	if in.OldString == "" {
		return "", ChangeResult{}, invalid("old_string is empty: give the exact text to replace (use write_file to write a whole file)")
	}
	if in.OldString == in.NewString {
		return "", ChangeResult{}, invalid("old_string and new_string are the same: nothing to change")
	}
	data, rr, err := s.load(ctx, id, in.Path, "")
	if err != nil {
		return "", ChangeResult{}, err
	}
	if in.ExpectedHash != "" && in.ExpectedHash != rr.Hash {
		return "", ChangeResult{}, &client.Error{Code: domain.CodeConflict, Message: fmt.Sprintf("%s changed since you read it: its hash is now %s, not %s", rr.Path, rr.Hash, in.ExpectedHash)}
	}
	text := string(data)
	n := strings.Count(text, in.OldString)
	switch {
	case n == 0:
		return "", ChangeResult{}, invalid("old_string does not occur in %s: read the file and copy the exact text, whitespace included", rr.Path)
	case n > 1 && !in.ReplaceAll:
		return "", ChangeResult{}, invalid("old_string occurs %d times in %s: add surrounding lines to make it unique, or set replace_all", n, rr.Path)
	}
	if in.ReplaceAll {
		text = strings.ReplaceAll(text, in.OldString, in.NewString)
	} else {
		text = strings.Replace(text, in.OldString, in.NewString, 1)
	}
	m := c.mutation()
	m.Token = in.Token
	// The hash just read rides on the write: a change in between is a
	// conflict, not a lost update.
	r, err := s.c.Write(ctx, client.WriteRequest{Mutation: m, Session: id, Path: rr.Path, Content: []byte(text), Mode: rr.Mode, ExpectedHash: rr.Hash})
	if err != nil {
		return "", ChangeResult{}, err
	}
	res := changeResult(r)
	res.Replacements = n
	return fmt.Sprintf("edited %s: %d replacement(s), hash %s, position %d", r.Path, n, r.Hash, r.Position), res, nil
}

func (s *Server) listFiles(ctx context.Context, _ *call, in ListFilesArgs) (string, ListResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ListResult{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = defaultListLimit
	}
	r, err := s.c.Search(ctx, client.SearchRequest{Session: id, At: client.At(in.At), Prefix: in.Prefix, Glob: in.Glob, Limit: limit, Cursor: in.Cursor})
	if err != nil {
		return "", ListResult{}, err
	}
	var b strings.Builder
	for _, f := range r.Files {
		switch f.Kind {
		case "dir":
			b.WriteString(f.Path + "/\n")
		case "file":
			fmt.Fprintf(&b, "%s  %d bytes\n", f.Path, f.Size)
		default:
			fmt.Fprintf(&b, "%s  (%s)\n", f.Path, f.Kind)
		}
	}
	if len(r.Files) == 0 {
		b.WriteString("no paths match\n")
	}
	if r.NextCursor != "" {
		fmt.Fprintf(&b, "more: call again with cursor=%s\n", r.NextCursor)
	}
	return b.String(), ListResult{Entries: r.Files, NextCursor: r.NextCursor, Position: r.Position}, nil
}

func (s *Server) makeDirectory(ctx context.Context, c *call, in PathArgs) (string, ChangeResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ChangeResult{}, err
	}
	m := c.mutation()
	m.Token = in.Token
	r, err := s.c.Mkdir(ctx, client.MkdirRequest{Mutation: m, Session: id, Path: in.Path})
	if err != nil {
		return "", ChangeResult{}, err
	}
	return fmt.Sprintf("made directory %s, position %d", in.Path, r.Position), changeResult(r), nil
}

func (s *Server) remove(ctx context.Context, c *call, in PathArgs) (string, ChangeResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ChangeResult{}, err
	}
	m := c.mutation()
	m.Token = in.Token
	r, err := s.c.Remove(ctx, client.RemoveRequest{Mutation: m, Session: id, Path: in.Path, Recursive: in.Recursive, ExpectedHash: in.ExpectedHash})
	if err != nil {
		return "", ChangeResult{}, err
	}
	return fmt.Sprintf("removed %s, position %d", in.Path, r.Position), changeResult(r), nil
}

func (s *Server) move(ctx context.Context, c *call, in MoveArgs) (string, ChangeResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ChangeResult{}, err
	}
	m := c.mutation()
	m.Token = in.Token
	r, err := s.c.Rename(ctx, client.RenameRequest{Mutation: m, Session: id, From: in.From, To: in.To, ExpectedHash: in.ExpectedHash})
	if err != nil {
		return "", ChangeResult{}, err
	}
	return fmt.Sprintf("moved %s to %s, position %d", in.From, in.To, r.Position), changeResult(r), nil
}

func (s *Server) changeMode(ctx context.Context, c *call, in ModeArgs) (string, ChangeResult, error) {
	id, err := s.session(in.Session)
	if err != nil {
		return "", ChangeResult{}, err
	}
	mode, err := parseMode(in.Mode)
	if err != nil {
		return "", ChangeResult{}, err
	}
	m := c.mutation()
	m.Token = in.Token
	r, err := s.c.Chmod(ctx, client.ChmodRequest{Mutation: m, Session: id, Path: in.Path, Mode: &mode, ExpectedHash: in.ExpectedHash})
	if err != nil {
		return "", ChangeResult{}, err
	}
	return fmt.Sprintf("%s is now mode %04o, position %d", in.Path, mode, r.Position), changeResult(r), nil
}

// parseMode reads octal permission bits (0 to 7777).
func parseMode(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, invalid("mode %q must be octal permission bits such as 644 or 755", s)
	}
	return uint32(v), nil
}

func changeResult(r client.ChangeReply) ChangeResult {
	return ChangeResult{Path: r.Path, Hash: r.Hash, Size: r.Size, Position: r.Position, Root: r.Root}
}
