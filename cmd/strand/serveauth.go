package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams"
)

// securityFlags are serve's flags for authentication, identity and limits
// (docs/security.md).
type securityFlags struct {
	config         string
	identity       bool
	accountTenants string
	limits         string
	noLimits       bool
	creds          string
	user, password string
}

func (s *securityFlags) declare(fs *flag.FlagSet, m *Main) {
	fs.StringVar(&s.config, "config", m.env("STRAND_NATS_CONFIG", ""), "embedded: nats-server configuration file (accounts, users, TLS); see deploy/auth")
	fs.BoolVar(&s.identity, "auth-identity", false, "the actor is the authenticated NATS user (on by itself with a --config that defines accounts)")
	fs.StringVar(&s.accountTenants, "account-tenants", "", "with --auth-identity: ACCOUNT=tenant pairs, comma-separated (default: an account addresses the tenant of its name in lower case)")
	fs.StringVar(&s.limits, "limits", m.env("STRAND_LIMITS", ""), "per-tenant limits file (JSON); without it the documented defaults apply")
	fs.BoolVar(&s.noLimits, "no-limits", false, "turn per-tenant limits off")
	fs.StringVar(&s.creds, "creds", m.env("STRAND_SERVE_CREDS", ""), "with --nats: credentials file of the service's user")
	fs.StringVar(&s.user, "user", m.env("STRAND_SERVE_USER", ""), "with --nats: user name of the service")
	fs.StringVar(&s.password, "password", "", "with --nats: password of the service (prefer env STRAND_SERVE_PASSWORD)")
}

// check validates the flags before anything starts.
func (s *securityFlags) check(m *Main, external bool) error {
	if s.password == "" && external {
		// Not a flag default: flag usage would print it.
		s.password = m.env("STRAND_SERVE_PASSWORD", "")
	}
	if s.config != "" && external {
		return usagef("--config configures the embedded server; it cannot go with --nats")
	}
	if (s.creds != "" || s.user != "") && !external {
		return usagef("--user and --creds are for --nats; the embedded server lets the service in by itself")
	}
	if s.noLimits && s.limits != "" {
		return usagef("--limits and --no-limits contradict each other")
	}
	return nil
}

// natsOptions authenticate the service's connection to an external server.
func (s *securityFlags) natsOptions() []nats.Option {
	var opts []nats.Option
	if s.creds != "" {
		opts = append(opts, nats.UserCredentials(s.creds))
	}
	if s.user != "" {
		opts = append(opts, nats.UserInfo(s.user, s.password))
	}
	return opts
}

// apply sets the service options for identity and limits.
func (s *securityFlags) apply(o *handlers.Options, emb *streams.Embedded, views *projections.Sessions) error {
	o.Auth.Enabled = s.identity || (emb != nil && emb.HasAccounts())
	if s.accountTenants != "" {
		if !o.Auth.Enabled {
			return usagef("--account-tenants needs --auth-identity (or a --config with accounts)")
		}
		m, err := parseAccountTenants(s.accountTenants)
		if err != nil {
			return err
		}
		o.Auth.Accounts = m
	}
	if s.noLimits {
		return nil
	}
	var lc handlers.LimitsConfig
	if s.limits != "" {
		data, err := os.ReadFile(s.limits)
		if err != nil {
			return fmt.Errorf("--limits: %w", err)
		}
		if lc, err = handlers.ParseLimits(data); err != nil {
			return fmt.Errorf("--limits %s: %w", s.limits, err)
		}
	}
	o.Limits = &lc
	o.Sessions = sessionCounter{views}
	return nil
}

func parseAccountTenants(s string) (map[string][]string, error) {
	m := map[string][]string{}
	for _, pair := range strings.Split(s, ",") {
		acc, tenant, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || acc == "" {
			return nil, usagef("--account-tenants: %q is not ACCOUNT=tenant", pair)
		}
		if err := domain.ValidTenant(tenant); err != nil {
			return nil, usagef("--account-tenants: %s", domain.ErrorMessage(err))
		}
		m[acc] = append(m[acc], tenant)
	}
	return m, nil
}

// sessionCounter counts a tenant's sessions that are not deleted from the
// session-views projection's kept counts (cheap; it lags the stream by the
// projection's delay).
type sessionCounter struct{ p *projections.Sessions }

func (c sessionCounter) SessionCount(ctx context.Context, tenant string) (int64, error) {
	page, err := c.p.Query(ctx, tenant, projections.ListFilter{Counts: true, Limit: 1})
	if err != nil {
		return 0, err
	}
	var n int64
	for status, k := range page.Counts {
		if status != string(domain.StatusDeleted) {
			n += int64(k)
		}
	}
	return n, nil
}

// redactURLs hides the passwords of NATS URLs (nats://user:pass@host) so
// that they never reach a log, an error or the terminal.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "[unparsable URL redacted]"
			}
			continue
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
			} else if u.Scheme != "" {
				// nats://TOKEN@host: the user part is the secret.
				u.User = url.User("REDACTED")
			}
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
