package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/strand-dev/strand/client"
)

// maxDiffFiles is how many files of a diff the page shows line by line;
// the rest are listed.
const maxDiffFiles = 60

// diffData is the diff page.
type diffData struct {
	S        client.SessionView
	From, To string // as asked ("" for the base and the head)
	Reply    client.DiffReply
	Files    []diffFile
	More     int // changed files not shown line by line
	AtHead   bool
	Suggest  []string
}

// diffFile is one changed path with its hunks and the notes on it.
type diffFile struct {
	Anchor  string
	Path    string
	OldPath string
	Change  string // added, modified, deleted, renamed
	Message string // "Binary files differ" and the like
	Hunks   []hunk
	// Notes are the threads on the path that no shown line holds: notes
	// on the whole file and on lines outside the hunks.
	Notes []thread
}

type hunk struct {
	Header string
	Rows   []diffRow
}

// diffRow is a line of a hunk; Threads are the notes that end on it.
type diffRow struct {
	Kind     string // ctx, add, del
	Old, New int
	HTML     template.HTML
	Threads  []thread
}

// thread is a note with its replies.
type thread struct {
	client.NoteView
	Replies []client.NoteView
}

// diffPage compares two points: by default the session's base with its
// head; from and to take a position, a checkpoint name or (from only)
// SESSION@AT of another session. Notes on the session show inline on the
// lines they were written for.
func (a *App) diffPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	q := r.URL.Query()
	head, err := c.GetSession(ctx, id, "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := &diffData{S: head.Session, From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	d.AtHead = d.To == "" || d.To == strconv.FormatUint(head.Session.Position, 10)
	req := client.DiffRequest{From: parseSide(id, d.From), To: client.DiffSide{Session: id, At: client.At(d.To)}}
	if d.Reply, err = c.Diff(ctx, req); err != nil {
		a.fail(w, r, err)
		return
	}
	d.Suggest = []string{"base"}
	for _, cp := range head.Session.Checkpoints {
		d.Suggest = append(d.Suggest, cp.Name)
	}
	notes, err := c.Notes(ctx, client.NotesRequest{Session: id})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	threads := threadsByPath(notes.Notes)
	if err := a.diffFiles(ctx, c, req, d, threads); err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, c, "diff", "Diff of "+shortID(id), d)
}

// parseSide reads the from side: empty or "base" is the base (nil), a
// bare point is this session at it, SESSION@AT another session.
func parseSide(id, s string) *client.DiffSide {
	switch {
	case s == "" || s == "base":
		return nil
	case strings.Contains(s, "@"):
		sess, at, _ := strings.Cut(s, "@")
		return &client.DiffSide{Session: sess, At: client.At(at)}
	case len(s) == 26 && strings.ToUpper(s) == s && !isDigits(s):
		return &client.DiffSide{Session: s}
	}
	return &client.DiffSide{Session: id, At: client.At(s)}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func (a *App) diffFiles(ctx context.Context, c *client.Client, req client.DiffRequest, d *diffData, threads map[string][]thread) error {
	type change struct{ path, old, kind string }
	var all []change
	// Folders are listed with what they hold: the files tell the change.
	add := func(list []client.DiffEntryView, kind string) {
		for _, e := range list {
			if e.Kind != "dir" {
				all = append(all, change{e.Path, "", kind})
			}
		}
	}
	add(d.Reply.Added, "added")
	add(d.Reply.Modified, "modified")
	add(d.Reply.Deleted, "deleted")
	for _, e := range d.Reply.Renamed {
		if e.Kind != "dir" {
			all = append(all, change{e.To, e.From, "renamed"})
		}
	}
	// The file diffs compare exactly the two states the list came from,
	// even if the session moves meanwhile; they are fetched a few at once.
	req.To.At = client.AtPosition(d.Reply.To.Position)
	if req.From != nil && req.From.At == "" {
		req.From = &client.DiffSide{Session: req.From.Session, At: client.AtPosition(d.Reply.From.Position)}
	}
	d.Files = make([]diffFile, len(all))
	var reads []func() error
	for i, ch := range all {
		f := &d.Files[i]
		*f = diffFile{Anchor: "f" + strconv.Itoa(i), Path: ch.path, OldPath: ch.old, Change: ch.kind}
		p := strings.TrimPrefix(ch.path, "/")
		switch {
		case i >= maxDiffFiles:
			d.More++
			f.Message = "not shown: open the file or narrow the diff"
			continue
		case ch.kind != "renamed":
			reads = append(reads, func() error {
				one := req
				one.Path = p
				rep, err := c.Diff(ctx, one)
				if err != nil {
					return fmt.Errorf("diff of %s: %w", ch.path, err)
				}
				f.Hunks, f.Message = parseUnified(p, rep.Unified)
				placeThreads(f, threads[p], d.AtHead)
				return nil
			})
		default:
			placeThreads(f, threads[p], d.AtHead)
		}
	}
	return bounded(diffReaders, reads...)
}

// diffReaders bounds the file diffs a page asks for at once.
const diffReaders = 8

// bounded runs the reads, at most n at once, and returns their errors.
func bounded(n int, reads ...func() error) error {
	errs := make([]error, len(reads))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, read := range reads {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = read()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// threadsByPath groups notes by path, replies under the note they answer.
func threadsByPath(notes []client.NoteView) map[string][]thread {
	replies := map[string][]client.NoteView{}
	for _, n := range notes {
		if n.ReplyTo != "" {
			replies[n.ReplyTo] = append(replies[n.ReplyTo], n)
		}
	}
	out := map[string][]thread{}
	for _, n := range notes {
		if n.ReplyTo == "" && n.Path != "" {
			p := strings.TrimPrefix(n.Path, "/")
			out[p] = append(out[p], thread{NoteView: n, Replies: replies[n.ID]})
		}
	}
	return out
}

// placeThreads puts each thread under the new-side line it ends on, when
// the diff shows the head (line numbers of older content mean other lines)
// and that line is shown; the others go above the file.
func placeThreads(f *diffFile, ts []thread, atHead bool) {
	for _, t := range ts {
		placed := false
		if atHead && t.LineEnd > 0 && !t.Outdated {
			for hi := range f.Hunks {
				for ri := range f.Hunks[hi].Rows {
					row := &f.Hunks[hi].Rows[ri]
					if row.Kind != "del" && row.New == t.LineEnd {
						row.Threads = append(row.Threads, t)
						placed = true
					}
				}
			}
		}
		if !placed {
			f.Notes = append(f.Notes, t)
		}
	}
}

// parseUnified reads a unified diff into hunks of highlighted rows; a diff
// without hunks ("Binary files differ") comes back as the message.
func parseUnified(name, u string) ([]hunk, string) {
	var hunks []hunk
	var msg []string
	var texts [][]string
	for _, line := range strings.Split(strings.TrimSuffix(u, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "--- "), strings.HasPrefix(line, "+++ "):
		case strings.HasPrefix(line, "@@"):
			hunks = append(hunks, hunk{Header: line})
			texts = append(texts, nil)
		case len(hunks) == 0:
			if line != "" {
				msg = append(msg, line)
			}
		case strings.HasPrefix(line, `\`):
			// "\ No newline at end of file" belongs to the line before.
		default:
			h := &hunks[len(hunks)-1]
			kind := map[byte]string{' ': "ctx", '+': "add", '-': "del"}[line[0]]
			if kind == "" {
				continue
			}
			h.Rows = append(h.Rows, diffRow{Kind: kind})
			texts[len(texts)-1] = append(texts[len(texts)-1], line[1:])
		}
	}
	for i := range hunks {
		o, n := hunkStart(hunks[i].Header)
		lines := highlightLines(name, strings.Join(texts[i], "\n")+"\n")
		for j := range hunks[i].Rows {
			row := &hunks[i].Rows[j]
			if j < len(lines) {
				row.HTML = lines[j]
			}
			switch row.Kind {
			case "ctx":
				row.Old, row.New = o, n
				o++
				n++
			case "add":
				row.New = n
				n++
			case "del":
				row.Old = o
				o++
			}
		}
	}
	return hunks, strings.Join(msg, " ")
}

// hunkStart reads the first old and new line numbers of "@@ -a,b +c,d @@".
func hunkStart(h string) (int, int) {
	var o, n int
	for _, f := range strings.Fields(h) {
		switch {
		case strings.HasPrefix(f, "-"):
			o = leadingInt(f[1:])
		case strings.HasPrefix(f, "+"):
			n = leadingInt(f[1:])
		}
	}
	return o, n
}

func leadingInt(s string) int {
	s, _, _ = strings.Cut(s, ",")
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return v
}
