package handlers_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
)

// TestErrors_Headers reads failed replies without the client: the micro
// error headers and the JSON body.
func TestErrors_Headers(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.session(t)
	h.write(t, id, "a.txt", "hi")
	tests := []struct {
		verb, body string
		code       domain.Code
		status     string
	}{
		{"get", `{"session":"` + neverID + `"}`, domain.CodeNotFound, "404"},
		{"get", `{"session":"nope"}`, domain.CodeInvalidArgument, "400"},
		{"get", `[1]`, domain.CodeInvalidArgument, "400"},
		{"archive", `{"session":"` + id + `","expected_position":1}`, domain.CodeConflict, "409"},
	}
	for _, tt := range tests {
		subject := names.Subject("acme", "session", tt.verb)
		msg, err := h.env.NC.Request(subject, []byte(tt.body), 10*time.Second)
		if err != nil {
			t.Fatalf("request %s %s: %v", subject, tt.body, err)
		}
		if got := msg.Header.Get("Nats-Service-Error-Code"); got != tt.status {
			t.Errorf("%s %s: Nats-Service-Error-Code %q, want %q", subject, tt.body, got, tt.status)
		}
		var eb client.ErrorBody
		if err := json.Unmarshal(msg.Data, &eb); err != nil {
			t.Errorf("%s %s: body %q is not JSON: %v", subject, tt.body, msg.Data, err)
			continue
		}
		if eb.Error.Code != string(tt.code) || eb.Error.Message == "" {
			t.Errorf("%s %s: body %s, want code %s and a message", subject, tt.body, msg.Data, tt.code)
		}
		if got := msg.Header.Get("Nats-Service-Error"); got != eb.Error.Message {
			t.Errorf("%s %s: Nats-Service-Error %q, want the message %q", subject, tt.body, got, eb.Error.Message)
		}
		if got := msg.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", subject, tt.body, got)
		}
	}
	// A success carries no error header.
	msg, err := h.env.NC.Request(names.Subject("acme", "session", "get"), []byte(`{"session":"`+id+`"}`), 10*time.Second)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got := msg.Header.Get("Nats-Service-Error-Code"); got != "" {
		t.Errorf("successful get: Nats-Service-Error-Code %q, want none", got)
	}
	var r client.SessionReply
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.Session.ID != id {
		t.Errorf("successful get: body %s (%v), want session %s", msg.Data, err, id)
	}
}

// TestService_Discovery reads the micro service's info and stats the way
// `nats micro info strand` does.
func TestService_Discovery(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.session(t)
	_, _ = h.c.GetSession(t.Context(), neverID, "")

	msg, err := h.env.NC.Request("$SRV.INFO."+names.ServiceName, nil, 10*time.Second)
	if err != nil {
		t.Fatalf("service info: %v", err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("service info %s: %v", msg.Data, err)
	}
	if info.Name != names.ServiceName || info.Version != handlers.Version {
		t.Errorf("got service %q version %q, want %q %q", info.Name, info.Version, names.ServiceName, handlers.Version)
	}
	subjects := map[string]bool{}
	for _, ep := range info.Endpoints {
		subjects[ep.Subject] = true
		if ep.QueueGroup != names.QueueGroup {
			t.Errorf("endpoint %s: queue group %q, want %q", ep.Name, ep.QueueGroup, names.QueueGroup)
		}
	}
	for _, ep := range allEndpoints {
		if want := names.Subject("*", ep.area, ep.verb); !subjects[want] {
			t.Errorf("endpoint %s: subject %s not in the service info", ep, want)
		}
	}

	msg, err = h.env.NC.Request("$SRV.STATS."+names.ServiceName, nil, 10*time.Second)
	if err != nil {
		t.Fatalf("service stats: %v", err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatalf("service stats %s: %v", msg.Data, err)
	}
	requests := map[string]int{}
	for _, ep := range stats.Endpoints {
		requests[ep.Name] = ep.NumRequests
	}
	for _, name := range []string{"session_create", "session_get"} {
		if requests[name] < 1 {
			t.Errorf("stats of %s: %d requests, want at least 1 (stats %s)", name, requests[name], msg.Data)
		}
	}
}
