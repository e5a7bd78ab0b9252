package domain

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// declared parses the package's non-test files and returns the names of the
// types with a command method, and of the constants of type EventType.
func declared(t *testing.T) (commands, events []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil && d.Name.Name == "command" && len(d.Recv.List) == 1 {
					if id, ok := d.Recv.List[0].Type.(*ast.Ident); ok {
						commands = append(commands, id.Name)
					}
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "EventType" {
						for _, n := range vs.Names {
							events = append(events, n.Name)
						}
					}
				}
			}
		}
	}
	if len(commands) == 0 || len(events) == 0 {
		t.Fatalf("found %d commands and %d event types in the package's files: the scan is broken", len(commands), len(events))
	}
	return commands, events
}

// TestCommandTable_EveryCommand fails for a command (a type with a command
// method) that has no row in the command table, or a row without what
// Execute, Produces and a retry need.
func TestCommandTable_EveryCommand(t *testing.T) {
	commands, _ := declared(t)
	inTable := map[string]bool{}
	for _, r := range commandTable {
		inTable[r.cmd.Name()] = true
		if r.decide == nil || len(r.produces) == 0 || (r.retry != RetrySession && r.retry != RetryNewSession) {
			t.Errorf("command %s: row %+v lacks a decide function, produced event types or a retry kind", r.cmd.Name(), r)
		}
		if (r.retry == RetryNewSession) != (r.base != nil) {
			t.Errorf("command %s: a command that starts a session, and only one, names the state its event applies to", r.cmd.Name())
		}
		for _, typ := range r.produces {
			if _, ok := eventRowOf(typ); !ok {
				t.Errorf("command %s produces %s, which has no row in the event table", r.cmd.Name(), typ)
			}
		}
	}
	for _, c := range commands {
		if !inTable[c] {
			t.Errorf("command %s has no row in the command table (domain/commands.go): give it its decide function, the event types it produces and its retry kind", c)
		}
	}
	if len(inTable) != len(commandTable) || len(commandTable) != len(commands) {
		t.Errorf("%d rows for %d distinct commands in the table and %d declared", len(commandTable), len(inTable), len(commands))
	}
}

// TestEventTable_EveryType fails for a declared event type without a row in
// the event table (so without an apply), and for a type that no command
// produces.
func TestEventTable_EveryType(t *testing.T) {
	_, events := declared(t)
	if len(events) != len(eventTable) || len(EventTypes) != len(eventTable) {
		t.Errorf("%d event types declared, %d rows in the event table, %d in EventTypes", len(events), len(eventTable), len(EventTypes))
	}
	byName := map[string]EventType{}
	for _, typ := range EventTypes {
		byName[string(typ)] = typ
	}
	for _, name := range events {
		typ, ok := byName[name]
		if !ok {
			t.Errorf("event type %s has no row in the event table (domain/event.go): give it its apply", name)
			continue
		}
		produced := false
		for _, r := range commandTable {
			produced = produced || slices.Contains(r.produces, typ)
		}
		if !produced {
			t.Errorf("event type %s: no command of the command table produces it", name)
		}
	}
	// An event of a type outside the table folds into nothing.
	s := &Session{ID: "s", Version: 1}
	if _, err := apply(s, &Event{Type: "Bogus", Session: "s", Version: 2, Prev: make([]byte, 32)}, nil); err == nil || !strings.Contains(err.Error(), `unknown event type "Bogus"`) {
		t.Errorf("apply(Bogus) = %v, want unknown event type", err)
	}
}

// TestProduces reads the command table: each command produces exactly the
// types of its row, and a value outside the table produces nothing (no
// default that says yes).
func TestProduces(t *testing.T) {
	for _, r := range commandTable {
		cmd := reflectZero(r)
		for _, typ := range EventTypes {
			if got, want := Produces(cmd, typ), slices.Contains(r.produces, typ); got != want {
				t.Errorf("Produces(%s, %s) = %v, want %v", r.cmd.Name(), typ, got, want)
			}
		}
		if RetryKindOf(cmd) != r.retry {
			t.Errorf("RetryKindOf(%s) = %d, want %d", r.cmd.Name(), RetryKindOf(cmd), r.retry)
		}
	}
	type notInTable struct{ Command }
	for _, typ := range EventTypes {
		if Produces(notInTable{}, typ) || Produces(nil, typ) {
			t.Errorf("a command outside the table produces %s", typ)
		}
	}
	if RetryKindOf(notInTable{}) != 0 {
		t.Errorf("a command outside the table has a retry kind")
	}
	if _, _, err := Execute(&Session{}, notInTable{}, Meta{}, nil); ErrorCode(err) != CodeInvalidArgument {
		t.Errorf("Execute(unknown command) = %v, want invalid_argument", err)
	}
	if RetryKindOf(CreateSession{}) != RetryNewSession || RetryKindOf(ForkSession{}) != RetryNewSession || RetryKindOf(ChangeFiles{}) != RetrySession {
		t.Errorf("create and fork start sessions (retry by the tenant's request id), a file change is the session's")
	}
}

// reflectZero is the zero value of a row's command.
func reflectZero(r commandRow) Command { return reflect.New(r.cmd).Elem().Interface().(Command) }

// TestEnvelopeField_EveryField: every field of Event that MessagePack
// encodes is found by its key by the direct decoder, as a pointer to that
// very field with a bit of its own; so a new payload field decodes without
// an edit of decode.go, and a reordering of Event cannot mix fields up.
func TestEnvelopeField_EveryField(t *testing.T) {
	var e Event
	v := reflect.ValueOf(&e).Elem()
	seen := uint64(0)
	for i := range v.NumField() {
		key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("msgpack"), ",")
		if key == "" || key == "-" {
			continue
		}
		ptr, bit := envelopeField(&e, []byte(key))
		if ptr == nil || reflect.ValueOf(ptr).Pointer() != v.Field(i).Addr().Pointer() {
			t.Errorf("key %q: envelopeField gives %T, not a pointer to field %s", key, ptr, v.Type().Field(i).Name)
		}
		if bit == 0 || seen&bit != 0 {
			t.Errorf("key %q: bit %b is zero or shared", key, bit)
		}
		seen |= bit
	}
	if ptr, bit := envelopeField(&e, []byte("nope")); ptr != nil || bit != 0 {
		t.Errorf("an unknown key gives %v, %b", ptr, bit)
	}
}
