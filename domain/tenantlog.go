package domain

import (
	"maps"
	"slices"
	"sort"
	"time"
)

// TenantEventType names a fact about a tenant as a whole: a change of its
// settings, its reviewer groups or its secrets, and every read of a
// secret's value. Tenant events form one hash-chained history per tenant
// (the tenant log), next to the sessions' histories, so that an auditor can
// tell who changed a tenant-wide setting and when.
type TenantEventType string

// The tenant event types.
const (
	TenantPolicySet TenantEventType = "TenantPolicySet"
	GroupSet        TenantEventType = "GroupSet"
	GroupDeleted    TenantEventType = "GroupDeleted"
	SecretPut       TenantEventType = "SecretPut"
	SecretDeleted   TenantEventType = "SecretDeleted"
	SecretRead      TenantEventType = "SecretRead"
	SecretsRekeyed  TenantEventType = "SecretsRekeyed"
)

// TenantEventTypes lists every tenant event type.
var TenantEventTypes = []TenantEventType{
	TenantPolicySet, GroupSet, GroupDeleted, SecretPut, SecretDeleted, SecretRead, SecretsRekeyed,
}

// TenantEvent is one entry of a tenant's log. Like a session event it
// carries the hash of the previous entry (Prev) and a version that numbers
// the tenant's entries from 1, so replay proves nothing was removed or
// altered. It never carries a secret's value.
type TenantEvent struct {
	ID        string          `msgpack:"id"`
	Type      TenantEventType `msgpack:"type"`
	Tenant    string          `msgpack:"tenant"`
	Actor     string          `msgpack:"actor"`
	Time      int64           `msgpack:"time"`
	RequestID string          `msgpack:"rid,omitempty"`
	Version   uint64          `msgpack:"n"`
	Prev      []byte          `msgpack:"prev"`

	Policy Policy      `msgpack:"policy,omitempty"`
	Group  *GroupData  `msgpack:"group,omitempty"`
	Secret *SecretData `msgpack:"secret,omitempty"`
}

// GroupData is the payload of GroupSet and GroupDeleted.
type GroupData struct {
	Name    string   `msgpack:"name" json:"name"`
	Members []string `msgpack:"members,omitempty" json:"members"`
}

// SecretData names a secret in SecretPut, SecretDeleted and SecretRead: its
// scope, name and version, and the id of the key that seals the value. The
// value itself is never part of an event.
type SecretData struct {
	// Session is the session of a session-scoped secret ("" for the
	// tenant's own).
	Session string `msgpack:"session,omitempty" json:"session,omitempty"`
	Name    string `msgpack:"name,omitempty" json:"name,omitempty"`
	Version uint64 `msgpack:"v,omitempty" json:"version,omitempty"`
	Key     string `msgpack:"key,omitempty" json:"key,omitempty"`
	// Via is the session a tenant secret was read through.
	Via string `msgpack:"via,omitempty" json:"via,omitempty"`
	// Count is how many values a rekey sealed again.
	Count int `msgpack:"count,omitempty" json:"count,omitempty"`
}

// At returns the event's time.
func (e *TenantEvent) At() time.Time { return time.Unix(0, e.Time).UTC() }

// Encode returns the MessagePack form of the entry, map keys sorted.
func (e *TenantEvent) Encode() ([]byte, error) { return encodeSorted(e) }

// DecodeTenantEvent parses a tenant log entry read back from a stream.
func DecodeTenantEvent(b []byte) (*TenantEvent, error) {
	e := new(TenantEvent)
	if err := DecodeMsgpack(b, e); err != nil {
		return nil, Errorf(CodeInternal, "decode tenant event: %v", err)
	}
	if e.Type == "" || e.Tenant == "" || e.Version == 0 || !slices.Contains(TenantEventTypes, e.Type) {
		return nil, Errorf(CodeInternal, "decode tenant event: incomplete or unknown entry")
	}
	return e, nil
}

// TenantState is the fold of a tenant's log: its default policy, reviewer
// groups and the newest version of every secret.
type TenantState struct {
	Tenant string
	// Version is the number of entries folded; Head the hash of the last.
	Version uint64
	Head    Hash
	// Policy is the tenant's default approval policy. PolicySet is false
	// until the log records one (older deployments kept it elsewhere).
	Policy    Policy
	PolicySet bool
	Groups    map[string][]string
	// Secrets maps a secret's key (SecretKey) to its newest version; a
	// deleted secret keeps its version so that a new value never reuses it.
	Secrets map[string]SecretVersion
}

// SecretVersion is what the tenant log knows of one secret.
type SecretVersion struct {
	Version uint64
	Deleted bool
}

// NewTenantState is the state of a tenant whose log is empty.
func NewTenantState(tenant string) *TenantState {
	return &TenantState{Tenant: tenant, Groups: map[string][]string{}, Secrets: map[string]SecretVersion{}}
}

// SecretKey names a secret in TenantState.Secrets: its scope and name.
func SecretKey(session, name string) string {
	if session == "" {
		return "tenant/" + name
	}
	return "session/" + session + "/" + name
}

// Apply folds the next entry of the log, checking that it follows the last
// one (version and hash chain).
func (s *TenantState) Apply(e *TenantEvent, hash Hash) error {
	if e.Tenant != s.Tenant {
		return Errorf(CodeInternal, "tenant log of %s holds an entry of %s", s.Tenant, e.Tenant)
	}
	if e.Version != s.Version+1 {
		return Errorf(CodeInternal, "tenant log of %s: entry %d follows %d", s.Tenant, e.Version, s.Version)
	}
	if prev, ok := HashFromBytes(e.Prev); !ok || prev != s.Head {
		return Errorf(CodeInternal, "tenant log of %s: entry %d does not chain to the one before", s.Tenant, e.Version)
	}
	switch e.Type {
	case TenantPolicySet:
		s.Policy, s.PolicySet = maps.Clone(e.Policy), true
	case GroupSet:
		if e.Group != nil {
			s.Groups[e.Group.Name] = slices.Clone(e.Group.Members)
		}
	case GroupDeleted:
		if e.Group != nil {
			delete(s.Groups, e.Group.Name)
		}
	case SecretPut, SecretDeleted:
		if e.Secret != nil {
			s.Secrets[SecretKey(e.Secret.Session, e.Secret.Name)] = SecretVersion{Version: e.Secret.Version, Deleted: e.Type == SecretDeleted}
		}
	case SecretRead, SecretsRekeyed:
		// Audit only: nothing of the state changes.
	default:
		return Errorf(CodeInternal, "tenant log of %s: unknown entry type %q", s.Tenant, e.Type)
	}
	s.Version, s.Head = e.Version, hash
	return nil
}

// Clone returns a copy that Apply on the original does not change.
func (s *TenantState) Clone() *TenantState {
	c := *s
	c.Policy = maps.Clone(s.Policy)
	c.Groups = make(map[string][]string, len(s.Groups))
	for k, v := range s.Groups {
		c.Groups[k] = slices.Clone(v)
	}
	c.Secrets = maps.Clone(s.Secrets)
	return &c
}

// NewTenantEvent starts the entry that follows the state.
func (s *TenantState) NewTenantEvent(typ TenantEventType, m Meta) *TenantEvent {
	return &TenantEvent{
		ID: m.EventID, Type: typ, Tenant: s.Tenant, Actor: m.Actor, Time: m.Time.UnixNano(),
		RequestID: m.RequestID, Version: s.Version + 1, Prev: s.Head.Bytes(),
	}
}

// IsMember reports whether actor belongs to a reviewer group.
func (s *TenantState) IsMember(group, actor string) bool {
	return slices.Contains(s.Groups[group], actor)
}

// GroupNames returns the tenant's groups, sorted.
func (s *TenantState) GroupNames() []string {
	names := make([]string, 0, len(s.Groups))
	for n := range s.Groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MaxGroupMembers bounds a reviewer group.
const MaxGroupMembers = 1000

// maxActorLen bounds a member's name (an actor).
const maxActorLen = 256

// ValidGroup checks a reviewer group's name and members, and returns the
// members sorted and without repeats.
func ValidGroup(name string, members []string) ([]string, error) {
	if !groupRe.MatchString(name) {
		return nil, Errorf(CodeInvalidArgument, "group must match [A-Za-z0-9][A-Za-z0-9_-]* (at most 64 characters)")
	}
	if len(members) > MaxGroupMembers {
		return nil, Errorf(CodeTooLarge, "a group holds at most %d members", MaxGroupMembers)
	}
	out := slices.Clone(members)
	for _, m := range out {
		if m == "" || len(m) > maxActorLen || !printable(m) {
			return nil, Errorf(CodeInvalidArgument, "a member must be a printable actor name of 1 to %d bytes", maxActorLen)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
