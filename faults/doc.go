// Package faults holds Strand's fault tests: they kill servers and service
// instances under load and check what survived. Nothing outside tests lives
// here.
//
// The heavy tests carry the build tag "fault" and run as their own CI step,
// .ci/faults, which runs
//
//	go test -race -tags fault -count=1 -timeout 25m ./faults/
//
// The tests:
//
//   - TestFault_ClusterNodeKilled: a three-node JetStream cluster (real
//     nats-server processes built from go.mod's nats-server, configured by
//     deploy/cluster/n*.conf) under write load through two service
//     instances; the event stream's leader is SIGKILLed and restarted,
//     twice.
//   - TestFault_ServeInstanceKilled: two `strand serve --nats --replicas 3`
//     processes started together on that cluster (every stream, bucket and
//     the projection's consumer must have three replicas); each in turn is
//     SIGKILLed mid-load and started again.
//   - TestFault_EmbeddedServerKilled: one `strand serve` (embedded
//     nats-server) SIGKILLed under load and restarted, twice; with fsync on
//     every write and with --no-fsync.
//   - TestFault_BackgroundWorkThroughFailover: the projections, workers
//     and blob collector of two instances under a mixed load (mixer) while
//     the leaders of the event stream and of the work queue are SIGKILLed
//     and restarted: nothing skipped, nothing collected that is named.
//
// TestSoak (build tags "fault soak", its own CI step .ci/soak) runs the
// mixed load for -soak.duration against one instance whose nats-server is
// SIGKILLed every few minutes, and watches its memory and goroutines.
//
// The clients write (with and without expected_position; most with a
// request_id, retried with it after a timeout or an unavailable or internal
// error; some without, sent once) and read heads. After each test: every
// acknowledged write is in its session's history exactly once and at the
// position its reply gave; every write refused with conflict is absent;
// every unanswered write is there at most once; every history passes the
// checks of an audit (contiguous versions, an unbroken hash chain, and a
// replay on a fresh store that recomputes every recorded Merkle root); and
// the operations the clients saw on each session are linearizable (checked
// with porcupine).
//
// TestRetry_* (no build tag, so they also run with go test ./...) show that
// a client that times out and retries with the same request_id never
// creates a duplicate, on one server and on a three-node cluster.
package faults
