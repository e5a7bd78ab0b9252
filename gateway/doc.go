// Package gateway is Strand's HTTP front: a client of the NATS API, never
// of the streams.
//
// Every route under /v1/{tenant}/ is derived from the service's endpoint
// table (client.Endpoints): the same JSON body is sent to the same
// subject and the reply comes back as it is, with the HTTP status that the
// one code table (client.StatusOf) gives to its error code. No endpoint
// is implemented here a second time; the few routes of the gateway's own
// (raw file upload and download, server-sent-event tails, the OpenAPI
// document, /metrics, login) are built from the same endpoints through the
// Go client.
//
// Identity: the credentials of a request (basic auth, a bearer token, or
// the session cookie of a login) become the NATS identity of the requests
// the gateway makes for it, one pooled connection per credential. NATS
// permissions and the service then enforce tenancy and the review rules as
// for any NATS client; the gateway decides nothing about who may do what.
//
// Lock order: pool.mu, then pooled.mu; sessions.mu is never held with
// either.
package gateway
