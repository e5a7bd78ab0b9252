package handlers

import (
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/keyring"
	"github.com/strand-dev/strand/names"
)

func scopeName(session string) string {
	if session == "" {
		return "tenant"
	}
	return "session"
}

func secretView(session, name string, r domain.SecretRecord) client.SecretView {
	return client.SecretView{Name: name, Scope: scopeName(session), Session: session, Version: r.Version, Size: r.Size, Actor: r.Actor, Time: r.Time}
}

// secrets returns the ring that seals values, or unavailable.
func (c *call) secrets() error {
	if c.svc.opts.Secrets == nil {
		return domain.Errorf(domain.CodeUnavailable, "this server has no secret key: start it with --secret-key FILE or STRAND_SECRET_KEY (docs/security.md)")
	}
	return nil
}

// decodeSecret decodes a secret request and checks its scope and name.
func (c *call) decodeSecret(req *client.SecretRequest) error {
	if err := c.secrets(); err != nil {
		return err
	}
	if err := c.decode(req); err != nil {
		return err
	}
	if req.Session != "" {
		id, err := sessionID(req.Session)
		if err != nil {
			return err
		}
		if _, err := c.resolveAt(id, ""); err != nil {
			return err
		}
		req.Session = id
	}
	return domain.ValidSecretName(req.Name)
}

func (s *Service) secretPut(c *call) (any, error) {
	var req client.SecretRequest
	if err := c.decodeSecret(&req); err != nil {
		return nil, err
	}
	if req.Value == nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "value is required")
	}
	value := []byte(*req.Value)
	if err := domain.ValidSecretValue(value); err != nil {
		return nil, err
	}
	if strings.IndexByte(*req.Value, 0) >= 0 {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "a secret's value must not hold NUL bytes (it may become an environment variable)")
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	key := domain.SecretKey(req.Session, req.Name)
	var rec domain.SecretRecord
	ts, replayed, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
		prev := ts.Secrets[key]
		if prev.Deleted || prev.Version == 0 {
			if countScope(ts, req.Session) >= domain.MaxSecretsPerScope {
				return nil, domain.Errorf(domain.CodeTooLarge, "a %s holds at most %d secrets", scopeName(req.Session), domain.MaxSecretsPerScope)
			}
		}
		version := prev.Version + 1
		sealed, err := s.opts.Secrets.Seal(value, domain.SecretAAD(c.tenant, req.Session, req.Name, version))
		if err != nil {
			return nil, domain.Wrap(err, "seal secret")
		}
		rec = domain.SecretRecord{Version: version, Actor: meta.Actor, Time: meta.Time.UTC(), Sealed: domain.Sealed(sealed), Size: len(value)}
		e := ts.NewTenantEvent(domain.SecretPut, meta)
		e.Secret = &domain.SecretData{Session: req.Session, Name: req.Name, Version: version, Key: sealed.Key}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	// The log records the change first, so no value is ever stored that
	// the log does not account for; a retry with the same request id
	// stores the value again without a second entry.
	if replayed {
		// The entry was stored by an earlier try of this request, whose
		// value may not have been: store it under the logged version.
		version := ts.Secrets[key].Version
		sealed, err := s.opts.Secrets.Seal(value, domain.SecretAAD(c.tenant, req.Session, req.Name, version))
		if err != nil {
			return nil, domain.Wrap(err, "seal secret")
		}
		rec = domain.SecretRecord{Version: version, Actor: meta.Actor, Time: meta.Time.UTC(), Sealed: domain.Sealed(sealed), Size: len(value)}
	}
	if err := s.store.PutSecret(c.ctx, c.tenant, req.Session, req.Name, rec); err != nil {
		return nil, err
	}
	return client.SecretReply{Secret: secretView(req.Session, req.Name, rec)}, nil
}

func countScope(ts *domain.TenantState, session string) int {
	prefix := domain.SecretKey(session, "")
	n := 0
	for k, v := range ts.Secrets {
		if !v.Deleted && strings.HasPrefix(k, prefix) && !strings.Contains(k[len(prefix):], "/") {
			n++
		}
	}
	return n
}

// secretGet answers strand.v1.<tenant>.secret.get.<scope>: the value of a
// session's secret (or, when the session has none of that name, its
// tenant's), or of a tenant's. Every read is recorded in the tenant log.
func (s *Service) secretGet(c *call) (any, error) {
	var req client.SecretRequest
	if err := c.decodeSecret(&req); err != nil {
		return nil, err
	}
	if req.Value != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "secret.get takes no value")
	}
	want := names.SecretScopeTenant
	if req.Session != "" {
		want = req.Session
	}
	if got := scopeToken(c.req.Subject()); got != want {
		return nil, domain.Errorf(domain.CodeForbidden, "secret.get for this scope answers on %s%s.secret.get.%s", names.SubjectPrefix, c.tenant, want)
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	owner := req.Session
	rec, err := s.store.Secret(c.ctx, c.tenant, owner, req.Name)
	if domain.ErrorCode(err) == domain.CodeNotFound && owner != "" {
		owner = ""
		rec, err = s.store.Secret(c.ctx, c.tenant, owner, req.Name)
	}
	if err != nil {
		return nil, err
	}
	plain, err := s.opts.Secrets.Open(keyring.Sealed(rec.Sealed), domain.SecretAAD(c.tenant, owner, req.Name, rec.Version))
	if err != nil {
		return nil, domain.Wrap(err, "open secret "+req.Name)
	}
	// Audit before answering: a value nobody can account for is never
	// handed out.
	meta.RequestID = "" // every read is its own entry
	if _, _, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
		e := ts.NewTenantEvent(domain.SecretRead, meta)
		e.Secret = &domain.SecretData{Session: owner, Name: req.Name, Version: rec.Version}
		if owner == "" && req.Session != "" {
			e.Secret.Via = req.Session
		}
		return e, nil
	}); err != nil {
		return nil, err
	}
	return client.SecretReply{Secret: secretView(owner, req.Name, rec), Value: string(plain)}, nil
}

// scopeToken returns the last token of a subject.
func scopeToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

func (s *Service) secretDelete(c *call) (any, error) {
	var req client.SecretRequest
	if err := c.decodeSecret(&req); err != nil {
		return nil, err
	}
	if req.Value != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "secret.delete takes no value")
	}
	meta, err := c.meta(req.Mutation)
	if err != nil {
		return nil, err
	}
	key := domain.SecretKey(req.Session, req.Name)
	var version uint64
	if _, _, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
		prev, ok := ts.Secrets[key]
		if !ok || prev.Deleted {
			return nil, domain.Errorf(domain.CodeNotFound, "secret not found")
		}
		version = prev.Version
		e := ts.NewTenantEvent(domain.SecretDeleted, meta)
		e.Secret = &domain.SecretData{Session: req.Session, Name: req.Name, Version: prev.Version}
		return e, nil
	}); err != nil {
		return nil, err
	}
	if err := s.store.DeleteSecret(c.ctx, c.tenant, req.Session, req.Name); err != nil {
		return nil, err
	}
	return client.SecretReply{Secret: client.SecretView{Name: req.Name, Scope: scopeName(req.Session), Session: req.Session, Version: version, Actor: meta.Actor, Time: meta.Time.UTC()}}, nil
}

func (s *Service) secretList(c *call) (any, error) {
	var req client.SecretListRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Session != "" {
		id, err := sessionID(req.Session)
		if err != nil {
			return nil, err
		}
		if _, err := c.resolveAt(id, ""); err != nil {
			return nil, err
		}
		req.Session = id
	}
	reply := client.SecretListReply{Secrets: []client.SecretView{}}
	scopes := []string{""}
	if req.Session != "" {
		scopes = []string{req.Session, ""}
	}
	for _, scope := range scopes {
		entries, err := s.store.ListSecrets(c.ctx, c.tenant, scope, false)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			reply.Secrets = append(reply.Secrets, secretView(e.Session, e.Name, e.Record))
		}
	}
	return reply, nil
}

// secretRekey seals every secret of the tenant again under the active key,
// so that an older key can be dropped (docs/security.md, rotation).
func (s *Service) secretRekey(c *call) (any, error) {
	var req client.Mutation
	if err := c.secrets(); err != nil {
		return nil, err
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	meta, err := c.meta(req)
	if err != nil {
		return nil, err
	}
	ring := s.opts.Secrets
	entries, err := s.store.ListSecrets(c.ctx, c.tenant, "", true)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, e := range entries {
		if e.Record.Sealed.Key == ring.Active() {
			continue
		}
		aad := domain.SecretAAD(c.tenant, e.Session, e.Name, e.Record.Version)
		plain, err := ring.Open(keyring.Sealed(e.Record.Sealed), aad)
		if err != nil {
			return nil, domain.Wrap(err, "open secret "+e.Name)
		}
		rec := e.Record
		sealed, err := ring.Seal(plain, aad)
		if err != nil {
			return nil, domain.Wrap(err, "seal secret")
		}
		rec.Sealed = domain.Sealed(sealed)
		if err := s.store.PutSecret(c.ctx, c.tenant, e.Session, e.Name, rec); err != nil {
			return nil, err
		}
		n++
	}
	if _, _, err := s.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
		e := ts.NewTenantEvent(domain.SecretsRekeyed, meta)
		e.Secret = &domain.SecretData{Key: ring.Active(), Count: n}
		return e, nil
	}); err != nil {
		return nil, err
	}
	return client.SecretRekeyReply{Key: ring.Active(), Resealed: n}, nil
}

// copySecrets gives a fork its parent's own secrets, each sealed again for
// the fork and recorded as a SecretPut of version 1. A secret the fork
// already has (a retried fork) is left alone.
func (c *call) copySecrets(from, to string, meta domain.Meta) error {
	ring := c.svc.opts.Secrets
	entries, err := c.svc.store.ListSecrets(c.ctx, c.tenant, from, false)
	if err != nil {
		return err
	}
	meta.RequestID = ""
	for _, e := range entries {
		plain, err := ring.Open(keyring.Sealed(e.Record.Sealed), domain.SecretAAD(c.tenant, from, e.Name, e.Record.Version))
		if err != nil {
			return domain.Wrap(err, "open secret "+e.Name)
		}
		var rec domain.SecretRecord
		if _, _, err := c.svc.store.AppendTenant(c.ctx, c.tenant, func(ts *domain.TenantState) (*domain.TenantEvent, error) {
			if v := ts.Secrets[domain.SecretKey(to, e.Name)]; v.Version > 0 && !v.Deleted {
				return nil, nil
			}
			sealed, err := ring.Seal(plain, domain.SecretAAD(c.tenant, to, e.Name, 1))
			if err != nil {
				return nil, domain.Wrap(err, "seal secret")
			}
			rec = domain.SecretRecord{Version: 1, Actor: meta.Actor, Time: meta.Time.UTC(), Sealed: domain.Sealed(sealed), Size: len(plain)}
			ev := ts.NewTenantEvent(domain.SecretPut, meta)
			ev.Secret = &domain.SecretData{Session: to, Name: e.Name, Version: 1, Key: sealed.Key, Via: from}
			return ev, nil
		}); err != nil {
			return err
		}
		if rec.Version == 0 {
			continue
		}
		if err := c.svc.store.PutSecret(c.ctx, c.tenant, to, e.Name, rec); err != nil {
			return err
		}
	}
	return nil
}
