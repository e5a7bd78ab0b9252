// Package names declares every NATS name Strand uses on the wire: request
// subjects, headers and the service's identity. It imports nothing, so
// every package (the light client included) can share one spelling.
package names

// ServiceName is the micro service name that `nats micro ls` shows.
const ServiceName = "strand"

// QueueGroup shares requests among every running instance.
const QueueGroup = "strand"

// HeaderActor carries the actor of a request when the body does not.
const HeaderActor = "Strand-Actor"

// HeaderRequestInfo is the header that nats-server puts on a request that
// crosses a service import (server.ClientInfoHdr). With `share: true` on
// the import it names the requester's account and authenticated user. The
// server sets it itself, replacing any value the requester wrote, so it
// cannot be forged from a tenant's account (docs/security.md).
const HeaderRequestInfo = "Nats-Request-Info"

// SubjectPrefix starts every request subject: strand.v1.<tenant>.<area>.<verb>.
const SubjectPrefix = "strand.v1."

// Subject returns the request subject of an endpoint for a tenant. An
// endpoint without a verb (diff) answers on strand.v1.<tenant>.<area>.
func Subject(tenant, area, verb string) string {
	return SubjectPrefix + tenant + "." + EndpointPath(area, verb)
}

// EndpointPath is the part of a request subject after the tenant:
// <area>.<verb>, or <area> alone for an endpoint without a verb.
func EndpointPath(area, verb string) string {
	if verb == "" {
		return area
	}
	return area + "." + verb
}

// WatchPrefix starts the subjects of the live tail of events.
const WatchPrefix = "strand.watch."

// WatchSubject is where the server republishes every event of a session as
// it stores it (MessagePack envelope, with the Strand-Type, Nats-Sequence
// and Nats-Subject headers): any NATS client can subscribe.
func WatchSubject(tenant, session string) string {
	return WatchPrefix + tenant + "." + session
}

// UsageStream holds the usage counters (JetStream counters): per tenant,
// the file content bytes its sessions were given, and its requests by
// endpoint, all instances together.
const UsageStream = "STRAND_USAGE"

// UsagePrefix starts the subjects of the usage counters.
const UsagePrefix = "strand.usage."

// UsageSubject is the subject of a tenant's bytes-stored counter in the
// counter stream UsageStream.
func UsageSubject(tenant string) string { return UsagePrefix + tenant + ".bytes" }

// UsageRequestPrefix starts the subjects of a tenant's request counters in
// UsageStream: the prefix and an endpoint's path ("fs.write") make the
// subject of the counter of the tenant's requests to that endpoint.
func UsageRequestPrefix(tenant string) string { return UsagePrefix + tenant + ".requests." }

// BusPrefix starts the plain NATS subjects of the session bus.
const BusPrefix = "strand.bus."

// BusSubject is the plain NATS subject of a session's topic.
func BusSubject(tenant, session, topic string) string {
	return BusPrefix + tenant + "." + session + "." + topic
}

// HeaderRetryAfter, on an unavailable reply, says in milliseconds when to
// try again: when the rate limit would admit the request, or about one
// leader election when the event store did not answer in time. Only a
// reply that also carries HeaderNotApplied did nothing; otherwise the
// request may have been applied, and a retry must carry its request_id.
const HeaderRetryAfter = "Strand-Retry-After"

// HeaderNotApplied ("true"), on a refusal (the rate limit), says that
// nothing was done: the request may be sent again as it is (the Go client
// does, see client.Client.RetryWait).
const HeaderNotApplied = "Strand-Not-Applied"

// SecretScopeTenant is the last token of secret.get's subject for a
// tenant's own secrets; for a session's it is the session id. Reading a
// value is its own subject so that NATS permissions can give a user read
// access to one session's secrets and nothing else
// (strand.v1.<tenant>.secret.get.<session>).
const SecretScopeTenant = "tenant"

// HeaderTenant, on an HTTP request to the gateway whose path names no
// tenant (web pages), names the tenant it addresses.
const HeaderTenant = "Strand-Tenant"

// HeaderPosition, on an HTTP file download, is the position the content
// was read at.
const HeaderPosition = "Strand-Position"
