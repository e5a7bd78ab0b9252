package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/names"
)

func (m *Main) printCacheEntries(g *globals, es []client.CacheEntryView) {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		exp := ""
		if e.ExpiresAt != nil {
			exp = e.ExpiresAt.Format(time.RFC3339)
		}
		rows = append(rows, []string{e.Key, strconv.FormatUint(e.Rev, 10), strconv.Itoa(e.Size), exp})
	}
	m.table([]string{"KEY", "REV", "SIZE", "EXPIRES"}, rows)
}

func (m *Main) cacheWrite(ctx context.Context, name string, args []string, cas bool) error {
	var ttl string
	var rev int64 = -1
	var mf mutationFlags
	g, pos, err := m.parseArgs(name, args, func(fs *flag.FlagSet) {
		fs.StringVar(&ttl, "ttl", "", "expire after this duration (90s, 1h)")
		fs.Int64Var(&rev, "expect-rev", -1, "write only if the key is at this revision (0: absent)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 3, name+" SESSION KEY VALUE"); err != nil {
		return err
	}
	req := client.CachePutRequest{Mutation: mf.mutation(), Session: pos[0], Key: pos[1], Value: []byte(pos[2]), TTL: ttl}
	if rev >= 0 {
		r := uint64(rev)
		req.ExpectedRev = &r
	} else if cas {
		return usagef("cas needs --expect-rev N")
	}
	if err := g.dial(); err != nil {
		return err
	}
	var r client.CacheReply
	if req.ExpectedRev != nil {
		r, err = g.client.CacheCAS(ctx, req)
	} else {
		r, err = g.client.CachePut(ctx, req)
	}
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	if r.Entry != nil {
		m.printCacheEntries(g, []client.CacheEntryView{*r.Entry})
	}
	return nil
}

func (m *Main) cachePut(ctx context.Context, args []string) error {
	return m.cacheWrite(ctx, "cache put", args, false)
}

func (m *Main) cacheCAS(ctx context.Context, args []string) error {
	return m.cacheWrite(ctx, "cache cas", args, true)
}

func (m *Main) cacheOne(ctx context.Context, name string, args []string, fn func(*client.Client, context.Context, client.CacheRequest) (client.CacheReply, error), print func(*globals, client.CacheReply) error) error {
	var at string
	var mf mutationFlags
	g, pos, err := m.dialArgs(name, args, 2, name+" SESSION KEY", func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "as of this position or checkpoint")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := fn(g.client, ctx, client.CacheRequest{Mutation: mf.mutation(), Session: pos[0], Key: pos[1], At: client.At(at)})
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	return print(g, r)
}

func (m *Main) cacheGet(ctx context.Context, args []string) error {
	return m.cacheOne(ctx, "cache get", args, (*client.Client).CacheGet, func(g *globals, r client.CacheReply) error {
		_, err := m.Stdout.Write(r.Entry.Value)
		return err
	})
}

func (m *Main) cacheMeta(ctx context.Context, args []string) error {
	return m.cacheOne(ctx, "cache meta", args, (*client.Client).CacheMeta, func(g *globals, r client.CacheReply) error {
		m.printCacheEntries(g, []client.CacheEntryView{*r.Entry})
		return nil
	})
}

func (m *Main) cacheRm(ctx context.Context, args []string) error {
	return m.cacheOne(ctx, "cache rm", args, (*client.Client).CacheDelete, func(g *globals, r client.CacheReply) error {
		m.printf("deleted (event at %d)\n", r.Position)
		return nil
	})
}

func (m *Main) cacheKeys(ctx context.Context, args []string) error {
	var req client.CacheKeysRequest
	var at string
	g, pos, err := m.parseArgs("cache keys", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.After, "after", "", "continue after this key")
		fs.IntVar(&req.Limit, "limit", 0, "page size")
		fs.StringVar(&at, "at", "", "as of this position or checkpoint")
	})
	if err != nil {
		return err
	}
	defer g.close()
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("usage: strand cache keys SESSION [PREFIX]")
	}
	req.Session, req.At = pos[0], client.At(at)
	if len(pos) == 2 {
		req.Prefix = pos[1]
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.CacheKeys(ctx, req)
	return m.show(g, r, err, func() {
		m.printCacheEntries(g, r.Keys)
		if r.NextCursor != "" {
			m.printf("next page: --after %s\n", r.NextCursor)
		}
	})
}

func (m *Main) cacheStats(ctx context.Context, args []string) error {
	g, pos, err := m.parseArgs("cache stats", args, nil)
	if err != nil {
		return err
	}
	defer g.close()
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("usage: strand cache stats SESSION [PREFIX]")
	}
	req := client.CacheKeysRequest{Session: pos[0]}
	if len(pos) == 2 {
		req.Prefix = pos[1]
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.CacheStats(ctx, req)
	return m.show(g, r, err, func() { m.printf("%d keys, %d bytes (position %d)\n", r.Keys, r.Bytes, r.Position) })
}

func (m *Main) cacheRmPrefix(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("cache rm-prefix", args, 2, "cache rm-prefix SESSION PREFIX", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.CacheBatch(ctx, "delete_prefix", client.CacheBatchRequest{Mutation: mf.mutation(), Session: pos[0], Prefix: pos[1]})
	return m.show(g, r, err, func() { m.printf("deleted %d keys (event at %d)\n", r.Deleted, r.Position) })
}

func (m *Main) printLocks(ls []client.LockView) {
	rows := make([][]string, 0, len(ls))
	for _, l := range ls {
		p := l.Path
		if p == "" {
			p = "/"
		}
		if l.Subtree {
			p += " (subtree)"
		}
		rows = append(rows, []string{p, l.Owner, l.ExpiresAt.Format(time.RFC3339), strconv.FormatBool(l.Active), l.Token})
	}
	m.table([]string{"PATH", "OWNER", "EXPIRES", "ACTIVE", "TOKEN"}, rows)
}

func (m *Main) lockDo(ctx context.Context, verb string, args []string, needToken bool) error {
	var req client.LockRequest
	var mf mutationFlags
	g, pos, err := m.parseArgs("lock "+verb, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&req.Subtree, "subtree", false, "lock the path and everything below it")
		fs.StringVar(&req.TTL, "ttl", "", "lease duration (default 5m)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 2, "lock "+verb+" SESSION PATH"); err != nil {
		return err
	}
	if needToken && mf.token == "" {
		return usagef("lock %s needs --token", verb)
	}
	req.Session, req.Path, req.Mutation = pos[0], pos[1], mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.Lock(ctx, verb, req)
	return m.show(g, r, err, func() { m.printLocks([]client.LockView{r.Lock}) })
}

func (m *Main) lockAcquire(ctx context.Context, args []string) error {
	return m.lockDo(ctx, "acquire", args, false)
}
func (m *Main) lockRenew(ctx context.Context, args []string) error {
	return m.lockDo(ctx, "renew", args, true)
}
func (m *Main) lockRelease(ctx context.Context, args []string) error {
	return m.lockDo(ctx, "release", args, true)
}
func (m *Main) lockForce(ctx context.Context, args []string) error {
	return m.lockDo(ctx, "force_release", args, false)
}

func (m *Main) lockList(ctx context.Context, args []string) error {
	g, pos, err := m.dialArgs("lock list", args, 1, "lock list SESSION", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Locks(ctx, client.LockListRequest{Session: pos[0]})
	return m.show(g, r, err, func() { m.printLocks(r.Locks) })
}

func (m *Main) busPub(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("bus pub", args, 3, "bus pub SESSION TOPIC MESSAGE", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.BusPublish(ctx, client.BusRequest{Mutation: mf.mutation(), Session: pos[0], Topic: pos[1], Data: []byte(pos[2])})
	return m.show(g, r, err, func() { m.printf("published on %s (#%d)\n", r.Subject, r.Sequence) })
}

func (m *Main) printBus(g *globals, msgs []client.BusMessageView) error {
	for _, msg := range msgs {
		if g.json {
			if err := json.NewEncoder(m.Stdout).Encode(msg); err != nil {
				return err
			}
			continue
		}
		m.printf("%s %s %s\n", msg.Time.Format(time.RFC3339Nano), msg.Actor, msg.Data)
	}
	return nil
}

func (m *Main) busReplay(ctx context.Context, args []string) error {
	var limit int
	g, pos, err := m.dialArgs("bus replay", args, 2, "bus replay SESSION TOPIC", func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 0, "at most this many (the newest)")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.BusReplay(ctx, client.BusRequest{Session: pos[0], Topic: pos[1], Limit: limit})
	if err != nil {
		return err
	}
	return m.printBus(g, r.Messages)
}

func (m *Main) busSub(ctx context.Context, args []string) error {
	var replay int
	g, pos, err := m.dialArgs("bus sub", args, 2, "bus sub SESSION TOPIC", func(fs *flag.FlagSet) {
		fs.IntVar(&replay, "replay", 0, "first print the last N retained messages")
	})
	if err != nil {
		return err
	}
	defer g.close()
	msgs := make(chan *nats.Msg, 256)
	sub, err := g.client.BusSubscribe(pos[0], pos[1], func(msg *nats.Msg) { msgs <- msg })
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck
	var last uint64
	if replay > 0 {
		r, err := g.client.BusReplay(ctx, client.BusRequest{Session: pos[0], Topic: pos[1], Limit: replay})
		if err != nil {
			return err
		}
		if err := m.printBus(g, r.Messages); err != nil {
			return err
		}
		if n := len(r.Messages); n > 0 {
			last = r.Messages[n-1].Sequence
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-msgs:
			v := client.BusMessageView{Time: time.Now().UTC(), Actor: msg.Header.Get(names.HeaderActor), Data: msg.Data}
			if md, err := msg.Metadata(); err == nil {
				v.Sequence = md.Sequence.Stream
			}
			if last != 0 && v.Sequence != 0 && v.Sequence <= last {
				continue
			}
			if err := m.printBus(g, []client.BusMessageView{v}); err != nil {
				return err
			}
		}
	}
}

func (m *Main) healthReport(ctx context.Context, args []string) error {
	var req client.HealthRequest
	var pass, fail bool
	var details string
	var mf mutationFlags
	g, pos, err := m.parseArgs("health report", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&pass, "pass", false, "the run passed")
		fs.BoolVar(&fail, "fail", false, "the run failed")
		fs.IntVar(&req.Passed, "passed", 0, "tests passed")
		fs.IntVar(&req.Failed, "failed", 0, "tests failed")
		fs.IntVar(&req.Skipped, "skipped", 0, "tests skipped")
		fs.StringVar(&req.Summary, "summary", "", "a summary")
		fs.StringVar(&details, "details", "", "details as JSON")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if err := need(pos, 1, "health report SESSION (--pass | --fail)"); err != nil {
		return err
	}
	if pass == fail {
		return usagef("give exactly one of --pass and --fail")
	}
	if details != "" {
		if !json.Valid([]byte(details)) {
			return usagef("--details must be JSON")
		}
		req.Details = json.RawMessage(details)
	}
	req.Session, req.Passing, req.Mutation = pos[0], &pass, mf.mutation()
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.ReportHealth(ctx, req)
	if err != nil {
		return err
	}
	return m.printHealth(g, r)
}

func (m *Main) printHealth(g *globals, r client.HealthReply) error {
	if g.json {
		return m.printJSON(r)
	}
	h := r.Health
	state := "FAILING"
	if h.Passing {
		state = "PASSING"
	}
	m.printf("%s  passed %d, failed %d, skipped %d  (%s by %s, position %d)\n%s\n", state, h.Passed, h.Failed, h.Skipped, h.ReportedAt.Format(time.RFC3339), h.Actor, h.Position, h.Summary)
	return nil
}

func (m *Main) healthGet(ctx context.Context, args []string) error {
	var at string
	g, pos, err := m.dialArgs("health get", args, 1, "health get SESSION", func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "as of this position or checkpoint")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Health(ctx, client.HealthRequest{Session: pos[0], At: client.At(at)})
	if err != nil {
		return err
	}
	return m.printHealth(g, r)
}

func (m *Main) fsXattr(ctx context.Context, args []string) error {
	var at string
	var mf mutationFlags
	g, pos, err := m.parseArgs("fs xattr", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "as of this position or checkpoint (get, list)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	defer g.close()
	if len(pos) < 3 {
		return usagef("usage: strand fs xattr set|get|list|rm SESSION PATH [NAME] [VALUE]")
	}
	verb := pos[0]
	req := client.XattrRequest{Session: pos[1], Path: pos[2], At: client.At(at)}
	switch verb {
	case "set":
		if len(pos) != 5 {
			return usagef("usage: strand fs xattr set SESSION PATH NAME VALUE")
		}
		req.Name, req.Value, req.Mutation = pos[3], []byte(pos[4]), mf.mutation()
	case "get", "rm":
		if len(pos) != 4 {
			return usagef("usage: strand fs xattr %s SESSION PATH NAME", verb)
		}
		req.Name = pos[3]
		if verb == "rm" {
			verb, req.Mutation = "remove", mf.mutation()
		}
	case "list":
		if len(pos) != 3 {
			return usagef("usage: strand fs xattr list SESSION PATH")
		}
	default:
		return usagef("fs xattr: unknown verb %q (set, get, list, rm)", verb)
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.Xattr(ctx, verb, req)
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	switch verb {
	case "get":
		_, err = m.Stdout.Write(r.Value)
		return err
	case "list":
		var rows [][]string
		for k, v := range r.Xattrs {
			rows = append(rows, []string{k, fmt.Sprintf("%q", v)})
		}
		m.table([]string{"NAME", "VALUE"}, rows)
	default:
		m.printf("%s %s on %s (event at %d)\n", verb, r.Name, r.Path, r.Position)
	}
	return nil
}
