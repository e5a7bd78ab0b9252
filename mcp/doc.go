// Package mcp serves a Strand tenant to coding agents over the Model
// Context Protocol, built on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk).
//
// It is a client of the Strand API like the CLI: every tool is one or a
// few requests through the typed Go client, so it never reaches into the
// streams (a check enforces that this package does not import them). What
// it owns is the translation: tools with schemas and descriptions written
// for a model, results as compact text with the structured reply
// alongside, errors as tool errors that carry the stable code and say what
// to do next, and the session's files as resources that follow its head.
//
// Protocol versions: those of the SDK (go-sdk v1.8.0): 2026-07-28 (the
// stateless protocol, per-request client info), and through the initialize
// handshake 2025-11-25, 2025-06-18, 2025-03-26 and 2024-11-05; a client
// gets the newest one it asks for. Transports: stdio and streamable HTTP.
//
// Scope: a server pinned to a session (Options.Session) offers no tool
// that names another session; otherwise every tool takes the session as
// an argument. The actor recorded in events is Options.Actor when set,
// else the name the MCP client gives in its client info, unless
// Options.ServerActor leaves it to the server (identity enforced from the
// NATS connection).
package mcp
