// Package handlers is Strand's NATS request/reply surface: one micro service
// named "strand" whose endpoints listen on strand.v1.<tenant>.<area>.<verb>,
// and the one table that maps domain error codes to the wire. The JSON
// request and reply types and the typed Go client for the same subjects
// live in package client, which imports nothing of the server.
//
// Handlers run on their own goroutines (bounded), because a micro endpoint
// delivers its requests one at a time; writes to one session are serialised
// by the store, writes to different sessions run in parallel.
package handlers
