package domain

import (
	"regexp"
	"time"
)

// Source origin kinds: where a revision's tree came from.
const (
	OriginBlank   = "blank"
	OriginTar     = "tar"
	OriginGit     = "git"
	OriginDir     = "dir"
	OriginSession = "session"
)

// Source event types, stored on the source's own subject.
const (
	SourceCreated = "SourceCreated"
	RevisionAdded = "RevisionAdded"
	SourceDeleted = "SourceDeleted"
)

// MaxSourceDescription bounds a source's description.
const MaxSourceDescription = 4096

var sourceNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidSourceName checks a source name: it is a NATS subject token.
func ValidSourceName(name string) error {
	if !sourceNameRe.MatchString(name) {
		return Errorf(CodeInvalidArgument, "source name must match [A-Za-z0-9][A-Za-z0-9_-]{0,63}")
	}
	return nil
}

// RevisionOrigin says where a revision's tree came from.
type RevisionOrigin struct {
	Kind string `msgpack:"kind" json:"kind"`
	// git
	Repo   string `msgpack:"repo,omitempty" json:"repo,omitempty"`
	Ref    string `msgpack:"ref,omitempty" json:"ref,omitempty"`
	Commit string `msgpack:"commit,omitempty" json:"commit,omitempty"`
	// dir
	Path string `msgpack:"path,omitempty" json:"path,omitempty"`
	// tar: the SHA-256 of the archive as uploaded
	Archive string `msgpack:"archive,omitempty" json:"archive,omitempty"`
	// session (a promotion)
	Session  string `msgpack:"session,omitempty" json:"session,omitempty"`
	Position uint64 `msgpack:"position,omitempty" json:"position,omitempty"`
}

// Revision is one numbered state of a source: a root tree hash, the blob
// that holds the tree's entries, and where it came from.
type Revision struct {
	Number uint64         `msgpack:"n"`
	Root   []byte         `msgpack:"root"`
	Tree   []byte         `msgpack:"tree"`
	Files  int64          `msgpack:"files"`
	Bytes  int64          `msgpack:"bytes"`
	Origin RevisionOrigin `msgpack:"origin"`
	// Uses names the approvals of the promoted session that allowed it,
	// and Gate what the policy required of the promotion.
	Uses []string `msgpack:"uses,omitempty"`
	Gate Policy   `msgpack:"gate,omitempty"`
}

// SourceEvent is one fact about a source.
type SourceEvent struct {
	Type        string    `msgpack:"type"`
	Tenant      string    `msgpack:"tenant"`
	Source      string    `msgpack:"source"`
	Actor       string    `msgpack:"actor,omitempty"`
	Time        int64     `msgpack:"time"`
	RequestID   string    `msgpack:"rid,omitempty"`
	Description string    `msgpack:"desc,omitempty"`
	Revision    *Revision `msgpack:"rev,omitempty"`
}

// Source is the fold of a source's events.
type Source struct {
	Name        string
	Tenant      string
	Description string
	Owner       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Deleted     bool
	Revisions   []Revision
	// Sequence is the stream sequence of the last event applied: the
	// expectation of the next append.
	Sequence uint64
}

// Latest returns the newest revision, if any.
func (s *Source) Latest() (Revision, bool) {
	if len(s.Revisions) == 0 {
		return Revision{}, false
	}
	return s.Revisions[len(s.Revisions)-1], true
}

// Revision returns revision n (0: the latest).
func (s *Source) Revision(n uint64) (Revision, error) {
	if n == 0 {
		if r, ok := s.Latest(); ok {
			return r, nil
		}
		return Revision{}, Errorf(CodeNotFound, "source %s has no revision yet", s.Name)
	}
	if n > uint64(len(s.Revisions)) {
		return Revision{}, Errorf(CodeNotFound, "source %s has no revision %d", s.Name, n)
	}
	return s.Revisions[n-1], nil
}

// ApplySource folds one stored source event (at stream sequence seq) into
// s (nil before the first).
func ApplySource(s *Source, e *SourceEvent, seq uint64) (*Source, error) {
	var n Source
	switch e.Type {
	case SourceCreated:
		if s != nil {
			return nil, Errorf(CodeInternal, "source %s created twice", e.Source)
		}
		n = Source{Name: e.Source, Tenant: e.Tenant, Description: e.Description, Owner: e.Actor,
			CreatedAt: time.Unix(0, e.Time).UTC()}
	case RevisionAdded, SourceDeleted:
		if s == nil {
			return nil, Errorf(CodeInternal, "event of source %s before its creation", e.Source)
		}
		n = *s
		if e.Type == SourceDeleted {
			n.Deleted = true
			break
		}
		if e.Revision == nil || e.Revision.Number != uint64(len(s.Revisions))+1 {
			return nil, Errorf(CodeInternal, "source %s: revision out of sequence", e.Source)
		}
		n.Revisions = append(s.Revisions[:len(s.Revisions):len(s.Revisions)], *e.Revision)
	default:
		return nil, Errorf(CodeInternal, "unknown source event %q", e.Type)
	}
	n.UpdatedAt = time.Unix(0, e.Time).UTC()
	n.Sequence = seq
	return &n, nil
}
