// Package client is the light, typed Go client of the Strand service: the
// JSON request and reply types of every endpoint (shared with the server in
// package handlers), the one error type a failed request returns, and a
// Client that sends them over NATS request/reply.
//
// A Go program that calls Strand imports this package and nothing of the
// server: it depends on nats.go, the standard library, the domain model (for
// its error codes and event envelope) and the names of the wire. A test
// (deps_test.go) holds it to that: no nats-server, no go-git, and at most 60
// packages outside the standard library.
package client
