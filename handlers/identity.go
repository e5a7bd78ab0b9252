package handlers

import (
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Auth says where the actor of a request comes from.
//
// Off (the zero value), the actor is asserted by the caller: the body's
// "actor" or the Strand-Actor header. On, the actor is the NATS user that
// the server authenticated, read from Nats-Request-Info, and a claimed
// actor that differs is refused with forbidden.
type Auth struct {
	// Enabled takes the actor from authentication.
	Enabled bool
	// Accounts maps a NATS account to the tenants its users may address.
	// Nil: an account addresses the tenant of its name in lower case
	// (ACME -> acme). NATS permissions already keep an account to its own
	// subjects; this check is a second line behind them.
	Accounts map[string][]string
}

// requestInfo is the part of server.ClientInfo that Strand reads.
type requestInfo struct {
	Account string `json:"acc"`
	User    string `json:"user"`
	// Service is set when the request went through more than one service
	// import; Strand exports to tenant accounts directly, so it must be
	// empty.
	Service string `json:"svc"`
}

// parseRequestInfo decodes a Nats-Request-Info value.
func parseRequestInfo(v string) (requestInfo, error) {
	var ri requestInfo
	if err := json.Unmarshal([]byte(v), &ri); err != nil {
		return ri, domain.Errorf(domain.CodeForbidden, "unreadable %s header", names.HeaderRequestInfo)
	}
	return ri, nil
}

// authenticate returns the authenticated actor of a request for a tenant,
// or "" when authentication is off. Every refusal is forbidden.
func (a Auth) authenticate(r micro.Request, tenant string) (string, error) {
	if !a.Enabled {
		return "", nil
	}
	values := r.Headers().Values(names.HeaderRequestInfo)
	if len(values) == 0 {
		// Only a connection inside the service's own account can reach
		// the endpoints without crossing an import.
		return "", domain.Errorf(domain.CodeForbidden, "the request carries no authenticated identity: call through your tenant account's import of %s%s.> (with share: true)", names.SubjectPrefix, tenant)
	}
	if len(values) > 1 {
		return "", domain.Errorf(domain.CodeForbidden, "more than one %s header", names.HeaderRequestInfo)
	}
	ri, err := parseRequestInfo(values[0])
	if err != nil {
		return "", err
	}
	return a.actorOf(ri, tenant)
}

// actorOf checks a request's identity against the tenant it addresses and
// returns the actor to record.
func (a Auth) actorOf(ri requestInfo, tenant string) (string, error) {
	if ri.Account == "" || ri.Service != "" {
		return "", domain.Errorf(domain.CodeForbidden, "the request did not come straight from a tenant account")
	}
	if !a.allows(ri.Account, tenant) {
		return "", domain.Errorf(domain.CodeForbidden, "account %s may not address tenant %s", truncate(ri.Account, 64), tenant)
	}
	if ri.User == "" {
		return "", domain.Errorf(domain.CodeForbidden, "the request names no authenticated user: the import of %s%s.> needs share: true", names.SubjectPrefix, tenant)
	}
	if err := validActor(ri.User); err != nil {
		return "", domain.Errorf(domain.CodeForbidden, "the authenticated user name is not usable as an actor")
	}
	return ri.User, nil
}

func (a Auth) allows(account, tenant string) bool {
	if a.Accounts == nil {
		return strings.ToLower(account) == tenant
	}
	for _, t := range a.Accounts[account] {
		if t == tenant {
			return true
		}
	}
	return false
}

// validActor checks the form of an actor name.
func validActor(actor string) error {
	if actor == "" || len(actor) > domain.MaxActorBytes || strings.ContainsAny(actor, "\x00\r\n") {
		return domain.Errorf(domain.CodeInvalidArgument, "actor must be 1 to %d bytes without NUL or newlines", domain.MaxActorBytes)
	}
	return nil
}

// claimedActor is the actor a request asserts: the body's field, else the
// Strand-Actor header.
func (c *call) claimedActor(m client.Mutation) string {
	if m.Actor != "" {
		return m.Actor
	}
	return c.req.Headers().Get(names.HeaderActor)
}

// actor returns the actor of a mutating request. With authentication the
// authenticated user is the actor and a claim of anyone else is refused:
// a reviewer cannot grant their own request by naming another reviewer.
func (c *call) actor(m client.Mutation) (string, error) {
	claimed := c.claimedActor(m)
	if c.user != "" {
		if claimed != "" && claimed != c.user {
			return "", domain.Errorf(domain.CodeForbidden, "actor %q is not the authenticated user %q", truncate(claimed, 64), c.user)
		}
		return c.user, nil
	}
	if claimed == "" {
		claimed = "anonymous"
	}
	if err := validActor(claimed); err != nil {
		return "", domain.Errorf(domain.CodeInvalidArgument, "actor must be at most %d bytes without NUL or newlines", domain.MaxActorBytes)
	}
	return claimed, nil
}
