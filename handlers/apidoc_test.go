package handlers_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// apiDoc is the API reference that these tests hold to the running service.
const apiDoc = "../docs/api.md"

// apiDocSections returns the parts of docs/api.md that the coverage tests
// read: the errors section, the index table of the endpoints and the
// endpoint reference (from the common objects up to the large-files
// section).
func apiDocSections(t *testing.T) (errs, index, reference string) {
	t.Helper()
	b, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatalf("read %s: %v", apiDoc, err)
	}
	doc := string(b)
	cut := func(from, to string) string {
		t.Helper()
		i := strings.Index(doc, from)
		if i < 0 {
			t.Fatalf("%s has no heading %q", apiDoc, from)
		}
		j := strings.Index(doc[i:], to)
		if j < 0 {
			t.Fatalf("%s has no heading %q after %q", apiDoc, to, from)
		}
		return doc[i : i+j]
	}
	return cut("\n## 2. Errors", "\n## 3. Endpoints"),
		cut("\n## 3. Endpoints", "\n### 3.0 Common objects"),
		cut("\n### 3.0 Common objects", "\n## 4. Large files")
}

// serviceSubjects starts the service on a real embedded JetStream and
// returns the documented subject (endpoint metadata "subject",
// strand.v1.<tenant>.<area>.<verb>) of every endpoint that micro's INFO
// reports.
func serviceSubjects(t *testing.T) []string {
	t.Helper()
	env := streamstest.Start(t)
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	subject, err := micro.ControlSubject(micro.InfoVerb, names.ServiceName, "")
	if err != nil {
		t.Fatalf("info subject: %v", err)
	}
	msg, err := env.NC.Request(subject, nil, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("decode %s reply %s: %v", subject, msg.Data, err)
	}
	if len(info.Endpoints) == 0 {
		t.Fatalf("%s: the service reports no endpoints", subject)
	}
	var out []string
	for _, ep := range info.Endpoints {
		s := ep.Metadata["subject"]
		if !strings.HasPrefix(s, names.SubjectPrefix+"<tenant>.") {
			t.Errorf("endpoint %s: metadata subject %q, want %s<tenant>.<area>.<verb>", ep.Name, s, names.SubjectPrefix)
			continue
		}
		out = append(out, s)
	}
	return out
}

// TestApiDoc_Endpoints fails when an endpoint of the running service is not
// documented: its subject must be in the index of docs/api.md and in the
// endpoint reference. It also fails when the reference documents a subject
// that no endpoint serves any more.
func TestApiDoc_Endpoints(t *testing.T) {
	t.Parallel()
	_, index, reference := apiDocSections(t)
	subjects := serviceSubjects(t)
	for _, s := range subjects {
		quoted := "`" + s + "`"
		if !strings.Contains(index, quoted) {
			t.Errorf("endpoint %s: not in the index table of %s (section 3); add a row", s, apiDoc)
		}
		if !strings.Contains(reference, quoted) {
			t.Errorf("endpoint %s: not documented in the endpoint reference of %s (sections 3.0 to 3.x)", s, apiDoc)
		}
	}
	for _, ep := range client.Endpoints {
		s := names.SubjectPrefix + "<tenant>." + ep.Path()
		if !slices.Contains(subjects, s) {
			t.Errorf("endpoint %s: a row of client.Endpoints that the running service does not serve", s)
		}
	}
	if len(subjects) != len(client.Endpoints) {
		t.Errorf("the service serves %d endpoints, the table has %d rows", len(subjects), len(client.Endpoints))
	}
	re := regexp.MustCompile("`(" + regexp.QuoteMeta(names.SubjectPrefix+"<tenant>.") + "[a-z_.]+)`")
	for _, part := range []string{index, reference} {
		for _, m := range re.FindAllStringSubmatch(part, -1) {
			if !slices.Contains(subjects, m[1]) {
				t.Errorf("%s documents %s, which no endpoint of the service serves", apiDoc, m[1])
			}
		}
	}
}

// TestApiDoc_Codes fails when a code of the closed set is not documented in
// the errors section of docs/api.md, as a row of its table.
func TestApiDoc_Codes(t *testing.T) {
	t.Parallel()
	errs, _, _ := apiDocSections(t)
	for _, code := range domain.Codes {
		if !strings.Contains(errs, "| `"+string(code)+"` |") {
			t.Errorf("error code %s: no row in the errors table of %s (section 2)", code, apiDoc)
		}
	}
}
