// Package web is Strand's review app: server-rendered pages for the people
// who review what sessions did (sessions, a session's tree at any position,
// its history, diffs with inline annotations, approval requests, commit and
// merge), served at / next to the HTTP API.
//
// The app is a client of the NATS API through the Go client, like the CLI:
// it never reaches into the streams, and every request it makes carries the
// identity of the person asking (Options.ClientFor), so tenant isolation and
// "no self-approval" are decided by NATS and the service, not here. A button
// the app disables (a stale approval, a commit the policy does not allow yet)
// is a hint for the reviewer; the service refuses the request anyway.
//
// Pages are html/template, the style sheet and the little JavaScript are
// embedded (no build step). Every state-changing request is a POST form
// protected against cross-origin requests by net/http.CrossOriginProtection;
// the one cookie (a flash message after a POST) is HttpOnly and SameSite.
// Forms carry a request id made when the page is rendered, so a form sent
// twice is stored once.
package web
