// Package bench is Strand's benchmark suite (strand bench): each row measures
// one thing Strand does and, in the same run on the same server, the raw
// JetStream work that is its physical limit, so a figure is always read as a
// ratio to the substrate rather than as an absolute number from some other
// machine.
//
// A Runner holds the environments a run measures against: by default two
// fresh embedded nats-servers in a temporary folder (one that fsyncs every
// write, the production default, and one that does not), or with
// Options.NATS an existing cluster, where everything the suite writes is
// under a tenant and stream names of its own. Rows are functions of a
// Runner that return Results; Run runs the selected rows and returns a
// Report.
//
// Rows build their fixtures (long histories, large trees) with a bulk
// builder that decides every event in process with domain.Execute, exactly
// as streams.Store.Change does, and publishes the encoded events
// asynchronously: a million events take seconds instead of minutes. The
// events are real (hash chain, Merkle roots, stored content) so every load
// replays and checks them like any other history.
//
// Every loop is bounded by a count and a deadline; measurements are medians
// of repetitions, interleaving the Strand and the raw measurement so that
// drift in a noisy machine affects both alike.
package bench
