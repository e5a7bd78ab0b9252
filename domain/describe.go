package domain

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Describing an event is how every reader sees it in one line: the API's
// event view carries it (client.EventView.Summary), `strand events` and
// `strand audit log --timeline` print it. Each event type's describe
// function sits next to its apply and is named by its row of the event
// table; TestEvent_SummaryEveryType fails for a type that renders nothing.

// Limits of a summary: the longest piece of free text (a note's body, a
// commit's message) and the most items of a list (operations, cache keys)
// it shows.
const (
	summaryTextRunes = 80
	summaryItems     = 5
)

// Summary returns the event's payload in one line of text: what it did, to
// what, with free text shortened to its first line and control characters
// replaced, and the approvals it used. It is empty only for an event of a
// type outside the event table.
func (e *Event) Summary() string {
	row, ok := eventRowOf(e.Type)
	if !ok {
		return ""
	}
	s := row.describe(e)
	if len(e.Uses) > 0 {
		s = joinParts(s, "using approval "+strings.Join(e.Uses, ", "))
	}
	return s
}

// joinParts joins the non-empty parts of a summary with "; ".
func joinParts(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// listed joins at most summaryItems items with sep, and says how many more.
func listed(items []string, sep string) string {
	if len(items) > summaryItems {
		more := len(items) - summaryItems
		items = append(items[:summaryItems:summaryItems], "and "+strconv.Itoa(more)+" more")
	}
	return strings.Join(items, sep)
}

// text shows free text in a summary: its first line, control characters as
// spaces, at most summaryTextRunes runes.
func text(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " ..."
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > summaryTextRunes {
		s = string([]rune(s)[:summaryTextRunes-3]) + "..."
	}
	return strings.TrimSpace(s)
}

// describedPath shows a clean path, the root as "/".
func describedPath(p string) string { return text(displayPath(p)) }

// describedTags shows tags as k=v, sorted by key.
func describedTags(tags map[string]string) string {
	keys := slices.Sorted(maps.Keys(tags))
	items := make([]string, len(keys))
	for i, k := range keys {
		items[i] = text(k) + "=" + text(tags[k])
	}
	return strings.Join(items, ",")
}

// describedTime shows an instant (unix nanoseconds) in RFC 3339, UTC.
func describedTime(n int64) string { return time.Unix(0, n).UTC().Format(time.RFC3339) }

func itemsOf[T any](list []T, fn func(T) string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = fn(v)
	}
	return out
}

// describeOp shows one file operation.
func describeOp(op Op) string {
	s := op.Kind + " " + describedPath(op.Path)
	switch op.Kind {
	case OpWrite:
		s += " (" + strconv.FormatInt(op.Size, 10) + " B, " + mode(op.Mode) + ")"
	case OpChmod:
		s += " (" + mode(op.Mode) + ")"
	case OpRename:
		s += " -> " + describedPath(op.To)
	case OpSymlink:
		s += " -> " + text(op.Target)
	case OpRemove:
		if op.Recursive {
			s += " (recursive)"
		}
	case OpSetXattr, OpRemoveXattr:
		s += " " + text(op.Name)
	}
	return s
}

func mode(m uint32) string {
	s := strconv.FormatUint(uint64(m), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}
