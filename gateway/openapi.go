package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/invopop/jsonschema"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API, generated from
// the endpoint table and the Go wire types of each row (JSON Schema
// 2020-12, which OpenAPI 3.1 uses as it is).
func OpenAPI() ([]byte, error) {
	openapiOnce.Do(func() { openapiDoc, openapiErr = buildOpenAPI() })
	return openapiDoc, openapiErr
}

var (
	openapiOnce sync.Once
	openapiDoc  []byte
	openapiErr  error
)

func (g *Gateway) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := OpenAPI()
	if err != nil {
		writeError(w, domain.Wrap(err, "build openapi document"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

type object = map[string]any

// schemas reflects Go types into components/schemas.
type schemas struct {
	r    *jsonschema.Reflector
	defs object
}

func newSchemas() *schemas {
	return &schemas{r: &jsonschema.Reflector{
		// Requests are decoded strictly (unknown fields are refused);
		// replies gain fields over time, which additionalProperties
		// false would make a breaking change: both are left open here
		// and the service's decoder stays the judge of requests.
		AllowAdditionalProperties: true,
		// Anonymous: no $id per schema, they live in one document.
		Anonymous: true,
	}, defs: object{}}
}

// ref returns a reference to t's schema, reflecting it (and the types it
// uses) into the components once.
func (s *schemas) ref(t reflect.Type) object {
	if t.Kind() == reflect.Struct && t.NumField() == 0 {
		return object{"type": "object"}
	}
	sc := s.r.ReflectFromType(t)
	for name, d := range sc.Definitions {
		s.defs[name] = d
	}
	sc.Definitions = nil
	if sc.Ref != "" {
		return object{"$ref": sc.Ref}
	}
	return object{"$ref": "#/$defs/" + t.Name()}
}

func errorResponses(s *schemas, ok object) object {
	errRef := s.ref(reflect.TypeFor[client.ErrorBody]())
	out := object{"200": ok}
	for _, code := range domain.Codes {
		key := strconv.Itoa(client.StatusOf(code))
		if prev, seen := out[key].(object); seen {
			prev["description"] = prev["description"].(string) + ", " + string(code)
			continue
		}
		out[key] = object{"description": "error: " + string(code), "content": object{"application/json": object{"schema": errRef}}}
	}
	out["401"] = object{"description": "no credentials, or credentials the NATS server refused (code forbidden)",
		"content": object{"application/json": object{"schema": errRef}}}
	return out
}

var tenantParam = object{"name": "tenant", "in": "path", "required": true,
	"description": "the tenant: the <tenant> token of the NATS subject", "schema": object{"type": "string"}}

// routeParams are the path parameters of a route: the tenant and the
// wildcard tokens of its subject.
func routeParams(route string) []any {
	params := []any{tenantParam}
	for _, seg := range strings.Split(route, "/") {
		if name, ok := strings.CutPrefix(seg, "{p"); ok {
			params = append(params, object{"name": "p" + strings.TrimSuffix(name, "}"), "in": "path", "required": true,
				"description": "a token of the subject (secret.get.<scope>: a session id or tenant)", "schema": object{"type": "string"}})
		}
	}
	return params
}

func buildOpenAPI() ([]byte, error) {
	s := newSchemas()
	paths := object{}
	for _, e := range client.Endpoints {
		paths[Route(e)] = object{"post": object{
			"operationId": strings.NewReplacer(".", "_").Replace(e.Path()),
			"tags":        []string{e.Area},
			"summary":     "NATS " + names.SubjectPrefix + "<tenant>." + e.Path(),
			"parameters":  routeParams(Route(e)),
			"requestBody": object{"required": false, "content": object{"application/json": object{"schema": s.ref(reflect.TypeOf(e.Request))}}},
			"responses": errorResponses(s, object{"description": "the reply of " + e.Path(),
				"content": object{"application/json": object{"schema": s.ref(reflect.TypeOf(e.Reply))}}}),
		}}
	}
	ownRoutes(s, paths)
	doc := object{
		"openapi": "3.1.0",
		"info": object{"title": "Strand HTTP API", "version": "1",
			"description": "Every POST route is one endpoint of the NATS service (docs/api.md): the same JSON body, reply and error codes."},
		"paths": paths,
		"components": object{
			"schemas": s.defs,
			"securitySchemes": object{
				"basic":  object{"type": "http", "scheme": "basic"},
				"bearer": object{"type": "http", "scheme": "bearer"},
				"cookie": object{"type": "apiKey", "in": "cookie", "name": CookieName},
			},
		},
		"security": []any{object{}, object{"basic": []any{}}, object{"bearer": []any{}}, object{"cookie": []any{}}},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	// The reflector refers to definitions inside a schema; in the
	// document they are components.
	return bytes.ReplaceAll(out, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`)), nil
}

// ownRoutes documents the routes that are not one endpoint each.
func ownRoutes(s *schemas, paths object) {
	errs := func(ok object) object { return errorResponses(s, ok) }
	sessionParam := object{"name": "session", "in": "path", "required": true, "schema": object{"type": "string"}}
	pathParam := object{"name": "path", "in": "path", "required": true, "schema": object{"type": "string"},
		"description": "the file's path in the session (slashes included)"}
	q := func(name, desc string) object {
		return object{"name": name, "in": "query", "required": false, "description": desc, "schema": object{"type": "string"}}
	}
	files := strings.Replace(FilesRoute, "{path...}", "{path}", 1)
	paths[files] = object{
		"parameters": []any{tenantParam, sessionParam, pathParam},
		"get": object{
			"operationId": "files_get", "tags": []string{"fs"},
			"summary":    "A file's raw bytes (fs.read, all pieces at one position).",
			"parameters": []any{q("at", "a position, checkpoint name or commit id (default: the head)")},
			"responses": errs(object{"description": "the content; ETag is its hash, Strand-Position the position read",
				"content": object{"application/octet-stream": object{"schema": object{"type": "string", "contentMediaType": "application/octet-stream"}}}}),
		},
		"put": object{
			"operationId": "files_put", "tags": []string{"fs"},
			"summary": "Write a file from the raw body (fs.upload in chunks, then fs.write).",
			"parameters": []any{q("expected_hash", "refuse with conflict unless the file has this hash"),
				q("mode", "permission bits, octal (644)"), q("token", "lease token of a locked path"),
				q("request_id", "idempotency key"), q("expected_position", "refuse with conflict unless the head is here")},
			"requestBody": object{"required": true, "content": object{"application/octet-stream": object{"schema": object{"type": "string", "contentMediaType": "application/octet-stream"}}}},
			"responses":   errs(object{"description": "as fs.write", "content": object{"application/json": object{"schema": s.ref(reflect.TypeFor[client.ChangeReply]())}}}),
		},
	}
	stream := func(id, summary string, params ...any) object {
		return object{"get": object{
			"operationId": id, "summary": summary, "parameters": append([]any{tenantParam}, params...),
			"responses": errs(object{"description": "server-sent events; each data line is one JSON value",
				"content": object{"text/event-stream": object{"schema": object{"type": "string"}}}}),
		}}
	}
	paths[EventsWatchRoute] = stream("events_watch", "A session's events from a position, then live (event: event, id: position); Last-Event-ID resumes.",
		q("session", "the session"), q("from", "first position (default: the beginning)"))
	paths[BusSubscribeRoute] = stream("bus_subscribe", "A bus topic's live messages (event: message).",
		q("session", "the session"), q("topic", "the topic"))
	paths["/v1/openapi.json"] = object{"get": object{"operationId": "openapi", "summary": "This document.",
		"responses": object{"200": object{"description": "OpenAPI 3.1", "content": object{"application/json": object{"schema": object{"type": "object"}}}}}}}
	paths["/v1/login"] = object{"post": object{"operationId": "login", "summary": "Check credentials and set the login cookie (HttpOnly, SameSite=Lax).",
		"requestBody": object{"required": true, "content": object{
			"application/json":                  object{"schema": s.ref(reflect.TypeFor[LoginRequest]())},
			"application/x-www-form-urlencoded": object{"schema": s.ref(reflect.TypeFor[LoginRequest]())}}},
		"responses": errs(object{"description": "logged in", "content": object{"application/json": object{"schema": s.ref(reflect.TypeFor[LoginReply]())}}})}}
	paths["/v1/logout"] = object{"post": object{"operationId": "logout", "summary": "Forget the login and clear its cookie.",
		"responses": object{"204": object{"description": "logged out"}}}}
	paths["/metrics"] = object{"get": object{"operationId": "metrics", "summary": "Prometheus metrics (text exposition format).",
		"responses": object{"200": object{"description": "metrics", "content": object{"text/plain": object{"schema": object{"type": "string"}}}}}}}
}
