package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
)

// Options select what a run measures and where.
type Options struct {
	// Quick uses the smaller sizes of QuickSizes (under two minutes on two
	// cores) instead of FullSizes.
	Quick bool
	// Sizes, when not nil, overrides the sizes Quick selects (tests use
	// TinySizes).
	Sizes *Sizes
	// NATS, when set, runs against an existing cluster at these URLs
	// (comma-separated) instead of fresh embedded servers.
	NATS string
	// Replicas of the bench's own streams on a cluster (0: as many as the
	// event stream has).
	Replicas int
	// Rows selects rows by number or name; empty means all.
	Rows []string
	// Dir is where the embedded servers' temporary folders go (default:
	// the system's temporary folder).
	Dir string
	// Keep leaves the temporary folder (embedded) or the bench tenant's
	// data (cluster) in place.
	Keep bool
	// Progress, when not nil, receives a line per step.
	Progress io.Writer
	// NoGroupCommit opens the stores with group commit off, to compare.
	NoGroupCommit bool
	// Tree, when set, is a real tree (Go's source, say) that row 8
	// measures as well as its generated one.
	Tree string
	// Tenant is the tenant everything is written under (default
	// "bench-" and 8 random hex digits). Against running instances with
	// per-tenant limits, name one the limits configuration exempts.
	Tenant string
	// KeepEntries leaves the kernel's dentries and inodes alone before
	// row 12's native cold walk (dropEntries drops them machine-wide, as
	// root): for the test suite, whose FUSE mounts in other packages run
	// at the same time and count on what their kernel keeps.
	KeepEntries bool
}

// Sizes are the sizes and repetitions of every row.
type Sizes struct {
	// Row 1: concurrent writers, length of one measuring round, rounds.
	WriteClients []int
	WriteRound   time.Duration
	WriteRounds  int
	// WriteBreakdown is how many single writes the 1-client case times
	// part by part.
	WriteBreakdown int
	// Row 2: parent history lengths, warm forks (through the service) and
	// cold forks (fresh store) per length.
	ForkEvents   []int
	ForkWarmReps int
	ForkColdReps int
	// ForkBuildBudget, when set, bounds the time spent building one
	// parent: a build that runs out stops at a snapshot boundary, and the
	// row says how many events it compared.
	ForkBuildBudget time.Duration
	// Row 3: history length, cold loads per variant with snapshots, and
	// without (a full replay, much longer).
	LoadEvents     int
	LoadReps       int
	LoadReplayReps int
	// Row 4: files in the tree, repetitions of the first page and of the
	// whole-tree listing.
	ManifestFiles     int
	ManifestPageReps  int
	ManifestWholeReps int
	// Row 5: tree sizes, changes, repetitions.
	DiffFiles   []int
	DiffChanges int
	DiffReps    int
	// Row 6: events in the stream, sessions they belong to, catch-ups.
	ProjectionEvents   int
	ProjectionSessions int
	ProjectionReps     int
	// Row 7: files in the tree, forks, file size range in bytes.
	StorageFiles   int
	StorageForks   int
	StorageMinSize int
	StorageMaxSize int
	// Row 8: files of the generated tree, repetitions of a checkout
	// (status, push and pull repeat three times as often).
	WorkcopyFiles int
	WorkcopyReps  int
	// Row 9: files in one change, repetitions.
	BulkFiles int
	BulkReps  int
	// Row 11: files in the tree (sizes as row 7's), repetitions.
	SearchFiles int
	SearchReps  int
	// Row 12: files of the generated tree a mount is measured on,
	// repetitions (each a fresh mount on an empty cache).
	MountFiles int
	MountReps  int
	// Row 13: reads at random past positions (and as many at the head).
	PastReads int
}

// FullSizes are the sizes the issue asks for.
func FullSizes() Sizes {
	return Sizes{
		WriteClients: []int{1, 16, 64}, WriteRound: 1500 * time.Millisecond, WriteRounds: 5, WriteBreakdown: 500,
		ForkEvents: []int{1_000, 100_000, 1_000_000}, ForkWarmReps: 41, ForkColdReps: 15,
		LoadEvents: 100_000, LoadReps: 11, LoadReplayReps: 5,
		ManifestFiles: 100_000, ManifestPageReps: 41, ManifestWholeReps: 9,
		DiffFiles: []int{1_000, 100_000}, DiffChanges: 10, DiffReps: 201,
		ProjectionEvents: 100_000, ProjectionSessions: 1_000, ProjectionReps: 3,
		StorageFiles: 10_000, StorageForks: 100, StorageMinSize: 512, StorageMaxSize: 8192,
		WorkcopyFiles: 10_000, WorkcopyReps: 5,
		BulkFiles: 1_000, BulkReps: 21,
		SearchFiles: 10_000, SearchReps: 21,
		MountFiles: 10_000, MountReps: 5,
		PastReads: 2_001,
	}
}

// QuickSizes finish in under two minutes on a 2-core machine. Forks still
// compare 1,000,000 with 1,000 parent events (the 1,000,000-event parent
// takes about 30 s to build on an idle machine; a busy one stops the build
// after 40 s, and the row names the size it reached); the other rows keep
// the sizes except the projection (5,000 events), with fewer and
// shorter repetitions.
func QuickSizes() Sizes {
	return Sizes{
		WriteClients: []int{1, 16, 64}, WriteRound: 300 * time.Millisecond, WriteRounds: 3, WriteBreakdown: 200,
		ForkEvents: []int{1_000, 1_000_000}, ForkWarmReps: 21, ForkColdReps: 7, ForkBuildBudget: 40 * time.Second,
		LoadEvents: 100_000, LoadReps: 5, LoadReplayReps: 1,
		ManifestFiles: 100_000, ManifestPageReps: 21, ManifestWholeReps: 3,
		DiffFiles: []int{1_000, 100_000}, DiffChanges: 10, DiffReps: 101,
		ProjectionEvents: 5_000, ProjectionSessions: 50, ProjectionReps: 3,
		StorageFiles: 10_000, StorageForks: 100, StorageMinSize: 512, StorageMaxSize: 8192,
		WorkcopyFiles: 10_000, WorkcopyReps: 3,
		BulkFiles: 1_000, BulkReps: 9,
		SearchFiles: 10_000, SearchReps: 9,
		MountFiles: 10_000, MountReps: 3,
		PastReads: 501,
	}
}

// TinySizes run every row in a few seconds; tests use them so the suite
// cannot rot. The figures mean nothing.
func TinySizes() Sizes {
	return Sizes{
		WriteClients: []int{1, 4}, WriteRound: 60 * time.Millisecond, WriteRounds: 1, WriteBreakdown: 10,
		ForkEvents: []int{10, 600}, ForkWarmReps: 2, ForkColdReps: 1, ForkBuildBudget: time.Nanosecond,
		LoadEvents: 600, LoadReps: 1, LoadReplayReps: 1,
		ManifestFiles: 1_500, ManifestPageReps: 2, ManifestWholeReps: 1,
		DiffFiles: []int{50, 1_200}, DiffChanges: 3, DiffReps: 3,
		ProjectionEvents: 300, ProjectionSessions: 10, ProjectionReps: 1,
		StorageFiles: 200, StorageForks: 5, StorageMinSize: 100, StorageMaxSize: 400,
		WorkcopyFiles: 300, WorkcopyReps: 1,
		BulkFiles: 20, BulkReps: 1,
		SearchFiles: 300, SearchReps: 2,
		MountFiles: 100, MountReps: 1,
		PastReads: 20,
	}
}

// Figure is one measured quantity.
type Figure struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// P50Ms and P99Ms are per-operation latency percentiles in
	// milliseconds, for rates measured operation by operation.
	P50Ms float64 `json:"p50_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	// Samples is how many measurements Value is the median of (or, for a
	// rate, how many operations it counts).
	Samples int `json:"samples"`
}

// Target is a goal a result is held to.
type Target struct {
	Want string `json:"want"`
	Pass bool   `json:"pass"`
	// Gap says by how much a missed target was missed.
	Gap string `json:"gap,omitempty"`
	// Margin is how the figure stands to the target as one number, 1 at
	// the line and above it when met: figure/target for a floor,
	// target/figure for a ceiling (what the chart draws).
	Margin float64 `json:"margin"`
}

// Result is one line of the report: a Strand figure next to the raw
// JetStream figure for the same work, measured in the same run.
type Result struct {
	Row    int    `json:"row"`
	Name   string `json:"name"`
	Case   string `json:"case"`
	Server string `json:"server"`
	Strand Figure `json:"strand"`
	// Raw is the substrate's figure for the same work; RawWhat says what
	// that work is.
	Raw     *Figure `json:"raw,omitempty"`
	RawWhat string  `json:"raw_what,omitempty"`
	// Ratio is Strand.Value / Raw.Value.
	Ratio  float64 `json:"ratio,omitempty"`
	Target *Target `json:"target,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs       int    `json:"nproc"`
	CPU        string `json:"cpu"`
	MemoryGiB  string `json:"memory_gib"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	NATSServer string `json:"nats_server"`
	// Load is /proc/loadavg at the start and the end of the run: other
	// work on the machine skews every figure.
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Machine  Machine   `json:"machine"`
	Mode     string    `json:"mode"`
	Quick    bool      `json:"quick"`
	Tenant   string    `json:"tenant"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Results  []Result  `json:"results"`
	Failures []string  `json:"failures,omitempty"`
}

// Row is one row of the suite.
type Row struct {
	N     int
	Name  string
	Title string
	Run   func(ctx context.Context, r *Runner) ([]Result, error)
}

// Rows returns the suite's rows in order.
func Rows() []Row {
	return []Row{
		{1, "write", "small-file write round trip", runWrite},
		{2, "fork", "fork latency by parent history length", runFork},
		{3, "load", "cold load of a 100,000-event session", runLoad},
		{4, "manifest", "manifest of a 100,000-file tree", runManifest},
		{5, "diff", "diff of 10 changes", runDiff},
		{6, "projection", "projection catch-up", runProjection},
		{7, "storage", "storage of 100 forks", runStorage},
		{8, "workcopy", "working copies against git on the same tree", runWorkcopy},
		{9, "bulk", "one change of 1,000 small files", runBulk},
		{10, "instances", "two service instances on the same sessions", runInstances},
		{11, "search", "search of a 10,000-file tree", runSearch},
		{12, "mount", "a mounted session against the native disk", runMount},
		{13, "past", "reads of a file at past positions of a 100,000-event session", runPast},
	}
}

// SelectRows returns the rows named by number or name (all when empty).
func SelectRows(names []string) ([]Row, error) {
	all := Rows()
	if len(names) == 0 {
		return all, nil
	}
	pick := map[int]bool{}
	for _, n := range names {
		n = strings.TrimSpace(strings.TrimPrefix(strings.ToLower(n), "r"))
		if n == "" {
			continue
		}
		found := false
		for _, row := range all {
			if n == strconv.Itoa(row.N) || n == row.Name {
				pick[row.N], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown row %q (1-13 or write, fork, load, manifest, diff, projection, storage, workcopy, bulk, instances, search, mount, past)", n)
		}
	}
	var out []Row
	for _, row := range all {
		if pick[row.N] {
			out = append(out, row)
		}
	}
	return out, nil
}

// Env is one server a run measures against, with a store, a service and a
// client on it.
type Env struct {
	// Name says how the server stores: "fsync", "no-fsync" or "cluster".
	Name string
	// Embedded is the in-process server (nil on a cluster).
	Embedded *streams.Embedded
	Dir      string
	// NC is the service's connection; ClientNC the callers' (clients and
	// raw publishers share it, so both pay the same transport).
	NC       *nats.Conn
	ClientNC *nats.Conn
	// JS is JetStream on ClientNC.
	JS      jetstream.JetStream
	Store   *streams.Store
	Config  streams.Config
	Service *handlers.Service
	Client  *client.Client
	// Replicas of the bench's own streams.
	Replicas int
	// shared is true when the cluster already runs the strand service: the
	// bench then measures those instances and does not add one of its own
	// to their queue group (it would take a share of everyone's requests).
	shared bool

	closers []func()
}

// Close stops what the environment started, newest first.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// Runner holds the environments and fixtures of one run.
type Runner struct {
	Opts   Options
	Sizes  Sizes
	Tenant string
	// Durable fsyncs every write (the production default); Fast does not.
	// On a cluster both are the cluster.
	Durable, Fast *Env

	dir      string
	ids      *idGen
	pool     *contentPool
	fixtures map[string]*fixture
	extra    []*Env
	started  time.Time
}

// NewRunner starts the environments: two embedded servers, or connections
// to a cluster.
func NewRunner(ctx context.Context, opts Options) (*Runner, error) {
	r := &Runner{Opts: opts, ids: newIDGen(), fixtures: map[string]*fixture{}, started: time.Now()}
	switch {
	case opts.Sizes != nil:
		r.Sizes = *opts.Sizes
	case opts.Quick:
		r.Sizes = QuickSizes()
	default:
		r.Sizes = FullSizes()
	}
	r.Tenant = opts.Tenant
	if r.Tenant == "" {
		var suffix [4]byte
		_, _ = rand.Read(suffix[:])
		r.Tenant = "bench-" + hex.EncodeToString(suffix[:])
	}
	if err := domain.ValidTenant(r.Tenant); err != nil {
		return nil, err
	}
	if opts.NATS != "" {
		env, err := r.dialCluster(ctx)
		if err != nil {
			return nil, err
		}
		r.Durable, r.Fast = env, env
		return r, nil
	}
	dir, err := os.MkdirTemp(opts.Dir, "strand-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary folder: %w", err)
	}
	r.dir = dir
	if r.Durable, err = r.startEmbedded(ctx, "fsync", true); err != nil {
		r.Close()
		return nil, err
	}
	if r.Fast, err = r.startEmbedded(ctx, "no-fsync", false); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops every environment and removes the temporary folder (or, on
// a cluster, the bench tenant's data) unless Options.Keep.
func (r *Runner) Close() {
	if r.Opts.NATS != "" && r.Durable != nil && !r.Opts.Keep {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r.cleanCluster(ctx, r.Durable)
		cancel()
	}
	for _, e := range r.extra {
		e.Close()
	}
	if r.Fast != nil && r.Fast != r.Durable {
		r.Fast.Close()
	}
	if r.Durable != nil {
		r.Durable.Close()
	}
	if r.dir != "" && !r.Opts.Keep {
		_ = os.RemoveAll(r.dir)
	}
}

// servers returns the servers a row measures on: the fsync one, and the
// no-fsync one when it is another.
func (r *Runner) servers() []*Env {
	if r.Fast != r.Durable {
		return []*Env{r.Durable, r.Fast}
	}
	return []*Env{r.Durable}
}

func (r *Runner) progressf(format string, args ...any) {
	if r.Opts.Progress != nil {
		fmt.Fprintf(r.Opts.Progress, "bench %6.1fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
	}
}

// startEmbedded starts a fresh embedded server in the run's folder and
// opens a store, a service and a client on it.
func (r *Runner) startEmbedded(ctx context.Context, name string, fsync bool) (*Env, error) {
	dir := filepath.Join(r.dir, name)
	srv, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: dir, Listen: "127.0.0.1:-1", SyncAlways: fsync, ServerName: "bench-" + name})
	if err != nil {
		return nil, err
	}
	e := &Env{Name: name, Embedded: srv, Dir: dir, Replicas: 1}
	e.closers = append(e.closers, srv.Shutdown)
	nc, err := srv.Connect(nats.Name("strand-bench-service"))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	e.closers = append(e.closers, nc.Close)
	cnc, err := srv.Connect(nats.Name("strand-bench-client"))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	e.closers = append(e.closers, cnc.Close)
	cfg := streams.Config{Replicas: 1, NoGroupCommit: r.Opts.NoGroupCommit}
	if fsync {
		// As strand serve opens its store on an embedded server that
		// fsyncs every write.
		cfg.GroupCommitMin = streams.DefaultGroupCommitMin
	}
	if err := e.open(ctx, nc, cnc, cfg, r.Tenant); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// open opens the store, service and client of an environment.
func (e *Env) open(ctx context.Context, nc, cnc *nats.Conn, cfg streams.Config, tenant string) error {
	e.NC, e.ClientNC = nc, cnc
	js, err := jetstream.New(cnc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	e.JS = js
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := streams.Open(octx, nc, cfg, nil)
	if err != nil {
		return err
	}
	e.Store, e.Config = st, st.Config()
	e.closers = append(e.closers, st.Close)
	if !e.shared {
		svc := handlers.NewService(st, handlers.Options{})
		if err := svc.Start(nc); err != nil {
			return err
		}
		e.Service = svc
		e.closers = append(e.closers, func() { _ = svc.Stop() })
	}
	e.Client = client.NewClient(cnc, tenant)
	e.Client.Actor = "bench"
	e.Client.Timeout = time.Minute
	return nil
}

// freshEmbedded starts one more embedded server (no fsync) for a row that
// needs a server of its own; it stops with the runner.
func (r *Runner) freshEmbedded(ctx context.Context, name string) (*Env, error) {
	e, err := r.startEmbedded(ctx, name, false)
	if err != nil {
		return nil, err
	}
	r.extra = append(r.extra, e)
	return e, nil
}

// Run runs the selected rows and returns the report. A row that fails is
// recorded in Report.Failures and the run goes on.
func Run(ctx context.Context, opts Options) (*Report, error) {
	rows, err := SelectRows(opts.Rows)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r, err := NewRunner(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep := &Report{Machine: DescribeMachine(), Mode: "embedded", Quick: opts.Quick, Tenant: r.Tenant, Started: start.UTC()}
	if opts.NATS != "" {
		rep.Mode = "cluster " + opts.NATS
	}
	if opts.NoGroupCommit {
		rep.Mode += ", group commit off"
	}
	for _, row := range rows {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.progressf("row %d %s: %s", row.N, row.Name, row.Title)
		res, err := row.Run(ctx, r)
		for i := range res {
			res[i].Row, res[i].Name = row.N, row.Name
		}
		rep.Results = append(rep.Results, res...)
		if err != nil {
			r.progressf("row %d %s failed: %v", row.N, row.Name, err)
			rep.Failures = append(rep.Failures, fmt.Sprintf("row %d %s: %v", row.N, row.Name, err))
		}
		settle()
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Machine.LoadEnd = loadAverage()
	return rep, nil
}

// settle collects the garbage that what ran before left: between rows,
// and inside a row between its setup and a timed loop (as go test collects
// before each benchmark), so that a loop of short requests is not timed
// while the collector marks a heap that a setup of hundreds of megabytes
// grew. Row 4's first page (0.1 ms) was timed during such a collection in
// about half of its runs (docs/benchmarks.md, twentieth session).
func settle() { runtime.GC() }

// Missed returns the results whose target was missed.
func (rep *Report) Missed() []Result {
	var out []Result
	for _, res := range rep.Results {
		if res.Target != nil && !res.Target.Pass {
			out = append(out, res)
		}
	}
	return out
}

// meta returns the event metadata of a bench command.
func (r *Runner) meta() domain.Meta {
	return domain.Meta{EventID: r.ids.next(), Actor: "bench", Time: time.Now().UTC()}
}

// median returns the median of xs (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (nearest rank) of ds in ms.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return ms(s[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latencyFigure is the median of repeated latencies, in ms.
func latencyFigure(ds []time.Duration) Figure {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = ms(d)
	}
	return Figure{Value: median(xs), Unit: "ms", P50Ms: percentile(ds, 50), P99Ms: percentile(ds, 99), Samples: len(ds)}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// atLeast is a target on a ratio that must reach want.
func atLeast(got, want float64, what string) *Target {
	t := &Target{Want: fmt.Sprintf("%s >= %.2f", what, want), Pass: got >= want, Margin: got / want}
	if !t.Pass {
		t.Gap = fmt.Sprintf("%.3f, %.1fx short of %.2f", got, want/max(got, 1e-9), want)
	}
	return t
}

// atMost is a target on a figure that must stay at or under want.
func atMost(got, want float64, what, unit string) *Target {
	t := &Target{Want: fmt.Sprintf("%s <= %s%s", what, trim(want), unit), Pass: got <= want, Margin: want / max(got, 1e-12)}
	if !t.Pass {
		t.Gap = fmt.Sprintf("%s%s, %.1fx over", trim(got), unit, got/want)
	}
	return t
}

func trim(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// timed runs fn with a deadline.
func timed(ctx context.Context, d time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return fn(ctx)
}
