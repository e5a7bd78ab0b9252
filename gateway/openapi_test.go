package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/gateway"
)

// TestOpenAPI checks the served document with a standard OpenAPI 3.1
// validator (pb33f/libopenapi-validator, against the specification's own
// schema), then checks real requests and replies against it: the schemas
// are generated from the same Go types the service encodes, so a drift
// between them fails here.
func TestOpenAPI(t *testing.T) {
	f := startFront(t)
	resp, err := http.Get(f.srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET openapi.json: %d %v", resp.StatusCode, err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("openapi version %q, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
			}
		}
	}

	var paths struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(spec, &paths); err != nil {
		t.Fatal(err)
	}
	for _, e := range client.Endpoints {
		if _, ok := paths.Paths[gateway.Route(e)]["post"]; !ok {
			t.Errorf("endpoint %s has no POST %s in the document", e.Path(), gateway.Route(e))
		}
	}

	id := f.createSession(t)
	exchange := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		check, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
		check.Header.Set("Content-Type", "application/json")
		if ok, verrs := v.ValidateHttpRequestResponse(check, resp); !ok {
			for _, e := range verrs {
				t.Errorf("POST %s %s -> %d %s: %s: %s", path, body, resp.StatusCode, data, e.Message, e.Reason)
				for _, se := range e.SchemaValidationErrors {
					t.Errorf("  at %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
				}
			}
		}
	}
	exchange("/v1/default/session/get", `{"session":"`+id+`"}`)
	exchange("/v1/default/fs/write", `{"session":"`+id+`","path":"a.txt","content":"aGVsbG8K","actor":"alice"}`)
	exchange("/v1/default/fs/read", `{"session":"`+id+`","path":"a.txt"}`)
	exchange("/v1/default/fs/manifest", `{"session":"`+id+`"}`)
	exchange("/v1/default/events/list", `{"session":"`+id+`"}`)
	exchange("/v1/default/session/list", `{}`)
	exchange("/v1/default/session/get", `{"session":"01J0000000000000000000000Z"}`) // a 404 body

	// The check can fail: a reply whose shape is not the schema's is
	// flagged (position must be an integer, session an object).
	t.Run("CatchesDrift", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/default/session/get", strings.NewReader(`{"session":"`+id+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"session":"nope","position":"x"}`)), Request: req}
		if ok, _ := v.ValidateHttpResponse(req, resp); ok {
			t.Error("a reply of the wrong shape passed validation")
		}
	})
}
