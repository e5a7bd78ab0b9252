package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/gateway"
	"github.com/strand-dev/strand/mount"
	"github.com/strand-dev/strand/names"
)

// doctorCheck is one check of `strand doctor`. A check that cannot say
// anything because an earlier one failed says skip. To add a check (the
// mount, the working copy), add a row to doctorChecks.
type doctorCheck struct {
	name string
	run  func(d *doctor, ctx context.Context) checkResult
}

// doctorChecks run in this order.
var doctorChecks = []doctorCheck{
	{"nats", (*doctor).checkConnect},
	{"jetstream", (*doctor).checkJetStream},
	{"streams", (*doctor).checkStreams},
	{"service", (*doctor).checkService},
	{"projections", (*doctor).checkProjections},
	{"workers", (*doctor).checkWorkers},
	{"http", (*doctor).checkHTTP},
	{"mount", (*doctor).checkMount},
}

// Check outcomes.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
	checkSkip = "skip"
)

// checkResult is what a check found, and what to do about it.
type checkResult struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctor is what the checks share.
type doctor struct {
	g        *globals
	js       jetstream.JetStream
	httpURL  string
	replicas int
	maxLag   uint64
	// streamsOK and serviceOK let later checks skip.
	streamsOK, serviceOK bool
}

// doctorStreams are the streams every deployment has once serve has run
// (buckets are streams named KV_<bucket>).
var doctorStreams = []string{
	names.EventStream, names.BlobStream, names.SourceStream, names.BusStream, names.WorkStream,
	names.DeadStream, names.FeedStream, names.GCStream, names.TenantLogStream,
	"KV_" + names.SnapshotBucket, "KV_" + names.TenantBucket, "KV_" + names.SessionsBucket, "KV_" + names.ControlBucket,
}

func (m *Main) cmdDoctor(ctx context.Context, args []string) error {
	d := &doctor{}
	var maxLag int
	g, pos, err := m.parseArgs("doctor", args, func(fs *flag.FlagSet) {
		fs.StringVar(&d.httpURL, "http", m.env("STRAND_HTTP_URL", "http://"+gateway.DefaultAddr), `URL of the HTTP front to check ("" to skip)`)
		fs.IntVar(&d.replicas, "replicas", 0, "replicas every stream should have (default: those of the event stream)")
		fs.IntVar(&maxLag, "max-lag", 1000, "projection lag (events) above which doctor warns")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 0, "doctor [--http URL] [--replicas N] [--max-lag N]"); err != nil {
		return err
	}
	d.g, d.maxLag = g, uint64(maxLag)
	defer g.close()
	var results []checkResult
	failed := 0
	for _, c := range doctorChecks {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		r := c.run(d, cctx)
		cancel()
		r.Check = c.name
		if r.Status == checkFail {
			failed++
		}
		results = append(results, r)
	}
	if g.json {
		if err := m.printJSON(results); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(results))
		for _, r := range results {
			rows = append(rows, []string{r.Check, r.Status, r.Detail})
		}
		m.table([]string{"CHECK", "STATUS", "DETAIL"}, rows)
		for _, r := range results {
			if r.Fix != "" {
				fmt.Fprintf(m.Stdout, "\nfix %s: %s\n", r.Check, r.Fix)
			}
		}
	}
	if failed > 0 {
		return &client.Error{Code: domain.CodeUnavailable, Message: fmt.Sprintf("%d of %d checks failed", failed, len(results))}
	}
	return nil
}

func (d *doctor) checkConnect(ctx context.Context) checkResult {
	if err := d.g.dial(); err != nil {
		return checkResult{Status: checkFail, Detail: client.ErrorMessage(err),
			Fix: "start the server (strand serve), or point --server (STRAND_SERVER) at it; with accounts give --user/--creds"}
	}
	js, err := jetstream.New(d.g.nc)
	if err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	d.js = js
	if err := d.g.nc.FlushTimeout(5 * time.Second); err != nil {
		return checkResult{Status: checkFail, Detail: "no round trip: " + err.Error(), Fix: "check the network path to the server"}
	}
	rtt, _ := d.g.nc.RTT()
	return checkResult{Status: checkOK, Detail: fmt.Sprintf("%s, server %s, round trip %s", redactURLs(d.g.nc.ConnectedUrl()), d.g.nc.ConnectedServerVersion(), rtt.Round(time.Microsecond))}
}

func (d *doctor) checkJetStream(ctx context.Context) checkResult {
	if d.js == nil {
		return checkResult{Status: checkSkip, Detail: "not connected"}
	}
	info, err := d.js.AccountInfo(ctx)
	if err != nil {
		return checkResult{Status: checkFail, Detail: err.Error(),
			Fix: "JetStream must be enabled in the service's account; run doctor as the service's user (--user strand) when tenants have accounts"}
	}
	return checkResult{Status: checkOK, Detail: fmt.Sprintf("%d streams, %d consumers, %s stored", info.Streams, info.Consumers, byteSize(info.Store))}
}

func (d *doctor) checkStreams(ctx context.Context) checkResult {
	if d.js == nil {
		return checkResult{Status: checkSkip, Detail: "not connected"}
	}
	var missing, wrong, lagging []string
	want := d.replicas
	for _, name := range doctorStreams {
		s, err := d.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return checkResult{Status: checkFail, Detail: fmt.Sprintf("%s: %v", name, err), Fix: "JetStream does not answer: check the cluster's meta leader (nats server report jetstream)"}
		}
		info := s.CachedInfo()
		if want == 0 {
			want = info.Config.Replicas // the event stream's, first in the list
		}
		if info.Config.Replicas != want {
			wrong = append(wrong, fmt.Sprintf("%s R%d", name, info.Config.Replicas))
		}
		if cl := info.Cluster; cl != nil {
			if cl.Leader == "" {
				lagging = append(lagging, name+" has no leader")
			}
			for _, p := range cl.Replicas {
				if p.Offline || !p.Current {
					lagging = append(lagging, fmt.Sprintf("%s replica %s behind by %d", name, p.Name, p.Lag))
				}
			}
		}
	}
	mirrors, err := d.directMirrors(ctx)
	if err != nil {
		return checkResult{Status: checkFail, Detail: "list streams: " + err.Error(), Fix: "JetStream does not answer: check the cluster's meta leader (nats server report jetstream)"}
	}
	switch {
	case len(missing) > 0:
		return checkResult{Status: checkFail, Detail: "missing: " + strings.Join(missing, ", "),
			Fix: "start strand serve once against this server: it provisions the streams and buckets"}
	case len(lagging) > 0:
		return checkResult{Status: checkWarn, Detail: strings.Join(lagging, "; "),
			Fix: "a cluster node is down or catching up: check it (nats server report jetstream)"}
	case len(mirrors) > 0:
		return checkResult{Status: checkWarn, Detail: fmt.Sprintf("%s mirrored with mirror_direct by %s: a mirror may answer a read at a session's head from behind", names.EventStream, strings.Join(mirrors, ", ")),
			Fix: "turn mirror_direct off on the mirror, or restart strand serve (it then reads heads through the stream leader; docs/operations.md section 4)"}
	case len(wrong) > 0:
		return checkResult{Status: checkWarn, Detail: fmt.Sprintf("want R%d: %s", want, strings.Join(wrong, ", ")),
			Fix: "set the replicas with nats stream edit NAME --replicas N, or run serve with the same --replicas everywhere"}
	}
	d.streamsOK = true
	return checkResult{Status: checkOK, Detail: fmt.Sprintf("%d streams and buckets, R%d", len(doctorStreams), want)}
}

// directMirrors lists the streams that mirror the event stream with
// mirror_direct, where the event stream has one replica: a service that
// started before such a mirror reads the heads of sessions with direct
// gets, which the mirror may answer from behind (design record 0021).
func (d *doctor) directMirrors(ctx context.Context) ([]string, error) {
	events, err := d.js.Stream(ctx, names.EventStream)
	if err != nil || events.CachedInfo().Config.Replicas != 1 {
		return nil, nil // missing (said above) or replicated: read through the leader
	}
	var out []string
	list := d.js.ListStreams(ctx)
	for info := range list.Info() {
		if m := info.Config.Mirror; m != nil && m.Name == names.EventStream && info.Config.MirrorDirect {
			out = append(out, info.Config.Name)
		}
	}
	return out, list.Err()
}

func (d *doctor) checkService(ctx context.Context) checkResult {
	if d.g.nc == nil {
		return checkResult{Status: checkSkip, Detail: "not connected"}
	}
	subject, err := micro.ControlSubject(micro.PingVerb, names.ServiceName, "")
	if err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	// Every instance answers a ping: count the answers for a moment.
	inbox := d.g.nc.NewRespInbox()
	sub, err := d.g.nc.SubscribeSync(inbox)
	if err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort
	if err := d.g.nc.PublishRequest(subject, inbox, nil); err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	instances := 0
	wait := 2 * time.Second
	for {
		msg, err := sub.NextMsg(wait)
		if err != nil {
			break
		}
		if len(msg.Data) > 0 {
			instances++
		}
		wait = 300 * time.Millisecond // the rest answer close behind the first
	}
	if instances == 0 {
		return checkResult{Status: checkFail, Detail: "no strand service answers " + subject,
			Fix: "start strand serve (or strand serve --nats URLS next to a cluster); with accounts, ping from the service's account"}
	}
	d.serviceOK = true
	return checkResult{Status: checkOK, Detail: fmt.Sprintf("%d instance(s) of %s answer", instances, names.ServiceName)}
}

func (d *doctor) checkProjections(ctx context.Context) checkResult {
	if !d.serviceOK {
		return checkResult{Status: checkSkip, Detail: "no service"}
	}
	r, err := d.g.client.Projections(ctx)
	if err != nil {
		return checkResult{Status: checkFail, Detail: client.ErrorMessage(err),
			Fix: "projections run inside strand serve: look at its log; with identity on, ask as a tenant user (--tenant, --user)"}
	}
	var parts, behind []string
	status := checkOK
	for _, p := range r.Projections {
		parts = append(parts, fmt.Sprintf("%s %s lag %d", p.Name, p.State, p.Lag))
		if p.Error != "" {
			status = checkFail
			behind = append(behind, p.Name+": "+p.Error)
		} else if p.Lag > d.maxLag {
			if status == checkOK {
				status = checkWarn
			}
			behind = append(behind, fmt.Sprintf("%s is %d events behind", p.Name, p.Lag))
		}
	}
	res := checkResult{Status: status, Detail: strings.Join(parts, ", ")}
	if len(behind) > 0 {
		res.Fix = strings.Join(behind, "; ") + ": give the instances more CPU or run more of them; strand projections rebuild NAME if one is stuck"
	}
	return res
}

func (d *doctor) checkWorkers(ctx context.Context) checkResult {
	if !d.streamsOK {
		return checkResult{Status: checkSkip, Detail: "streams not in order"}
	}
	work, err := d.js.Stream(ctx, names.WorkStream)
	if err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	dead, err := d.js.Stream(ctx, names.DeadStream)
	if err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	queued := work.CachedInfo().State.Msgs
	waiting, consumers := 0, 0
	lister := work.ListConsumers(ctx)
	for ci := range lister.Info() {
		consumers++
		waiting += ci.NumWaiting
	}
	if err := lister.Err(); err != nil {
		return checkResult{Status: checkFail, Detail: err.Error()}
	}
	letters := dead.CachedInfo().State.Msgs
	detail := fmt.Sprintf("%d queued, %d consumers, %d pulls waiting, %d dead letters", queued, consumers, waiting, letters)
	switch {
	case queued > 0 && waiting == 0:
		return checkResult{Status: checkWarn, Detail: detail,
			Fix: "work is queued and no worker is pulling: strand serve runs the built-in workers (check --workers), or run strand worker"}
	case letters > 0:
		return checkResult{Status: checkWarn, Detail: detail,
			Fix: "work items failed too often: look at them with nats stream view " + names.DeadStream + " and at the workers' log"}
	}
	return checkResult{Status: checkOK, Detail: detail}
}

func (d *doctor) checkHTTP(ctx context.Context) checkResult {
	if d.httpURL == "" {
		return checkResult{Status: checkSkip, Detail: "--http is empty"}
	}
	base := strings.TrimRight(d.httpURL, "/")
	hc := &http.Client{Timeout: 5 * time.Second}
	var got []string
	for _, path := range []string{"/v1/openapi.json", "/metrics"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return checkResult{Status: checkFail, Detail: err.Error(), Fix: "--http takes a URL such as http://127.0.0.1:8080"}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return checkResult{Status: checkFail, Detail: err.Error(),
				Fix: "nothing answers there: strand serve serves HTTP on --http (default 127.0.0.1:8080), strand gateway --http next to a cluster"}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return checkResult{Status: checkFail, Detail: fmt.Sprintf("GET %s: %s", path, resp.Status),
				Fix: "something else answers on that port, or a proxy in front refuses: see docs/operations.md (behind a proxy)"}
		}
		got = append(got, path+" "+strconv.Itoa(resp.StatusCode))
	}
	return checkResult{Status: checkOK, Detail: base + ": " + strings.Join(got, ", ")}
}

// byteSize prints a byte count for people.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// checkMount says whether this machine can mount sessions (strand mount):
// /dev/fuse, the permission to mount, the cache and state folders. A
// machine that only serves needs none of it, so a miss is a warning.
func (d *doctor) checkMount(ctx context.Context) checkResult {
	var missing []string
	for _, c := range mount.Checks(ctx, nil, defaultCacheDir(), defaultStateDir()) {
		if !c.OK {
			missing = append(missing, c.Name+": "+c.Detail)
		}
	}
	if len(missing) > 0 {
		return checkResult{Status: checkWarn, Detail: "strand mount cannot work here: " + strings.Join(missing, "; "),
			Fix: "see docs/mounts.md, Setup (Linux with /dev/fuse; root, or fuse3 for fusermount3)"}
	}
	return checkResult{Status: checkOK, Detail: "/dev/fuse, mount permission, cache and state folders"}
}
