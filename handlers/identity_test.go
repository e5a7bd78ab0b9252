package handlers

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func TestAuth_Authenticate(t *testing.T) {
	mapped := Auth{Enabled: true, Accounts: map[string][]string{"TENANT_ACME": {"acme", "acme-staging"}}}
	cases := []struct {
		name    string
		auth    Auth
		headers nats.Header
		tenant  string
		want    string // actor; "" with wantErr
		wantErr bool
	}{
		{"Off", Auth{}, nil, "acme", "", false},
		{"OffIgnoresHeader", Auth{}, nats.Header{names.HeaderRequestInfo: {`{"acc":"X","user":"y"}`}}, "acme", "", false},
		{"User", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME","user":"alice","name":"bob"}`}}, "acme", "alice", false},
		{"NoHeader", Auth{Enabled: true}, nil, "acme", "", true},
		{"TwoHeaders", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME","user":"alice"}`, `{"acc":"ACME","user":"alice"}`}}, "acme", "", true},
		{"NotJSON", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`alice`}}, "acme", "", true},
		{"OtherAccount", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"GLOBEX","user":"carol"}`}}, "acme", "", true},
		{"NoShare", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME"}`}}, "acme", "", true},
		{"Chained", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME","user":"alice","svc":"OTHER"}`}}, "acme", "", true},
		{"NameIsNotIdentity", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME","name":"alice"}`}}, "acme", "", true},
		{"BadUser", Auth{Enabled: true}, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME","user":"a\nb"}`}}, "acme", "", true},
		{"Mapped", mapped, nats.Header{names.HeaderRequestInfo: {`{"acc":"TENANT_ACME","user":"UABC"}`}}, "acme-staging", "UABC", false},
		{"MappedOnly", mapped, nats.Header{names.HeaderRequestInfo: {`{"acc":"ACME","user":"alice"}`}}, "acme", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.auth.authenticate(&fakeRequest{headers: tc.headers}, tc.tenant)
			if tc.wantErr {
				if domain.ErrorCode(err) != domain.CodeForbidden {
					t.Fatalf("authenticate: %q, %v; want forbidden", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("authenticate = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCall_Actor(t *testing.T) {
	cases := []struct {
		name    string
		user    string // authenticated ("" : off)
		body    string
		header  string
		want    string
		wantErr domain.Code
	}{
		{"Anonymous", "", "", "", "anonymous", ""},
		{"Body", "", "bob", "x", "bob", ""},
		{"Header", "", "", "bob", "bob", ""},
		{"TooLong", "", string(make([]byte, domain.MaxActorBytes+1)), "", "", domain.CodeInvalidArgument},
		{"Authenticated", "alice", "", "", "alice", ""},
		{"ClaimsSelf", "alice", "alice", "alice", "alice", ""},
		{"BodyClaimsOther", "alice", "bob", "", "", domain.CodeForbidden},
		{"HeaderClaimsOther", "alice", "", "bob", "", domain.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &call{user: tc.user, req: &fakeRequest{headers: nats.Header{}}}
			if tc.header != "" {
				c.req.(*fakeRequest).headers.Set(names.HeaderActor, tc.header)
			}
			got, err := c.actor(client.Mutation{Actor: tc.body})
			if tc.wantErr != "" {
				if domain.ErrorCode(err) != tc.wantErr {
					t.Fatalf("actor = %q, %v; want %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("actor = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
