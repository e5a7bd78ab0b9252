//go:build fault

package faults_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin holds the binaries TestMain builds: nats-server from go.mod's own
// dependency, and strand.
var bin struct {
	natsServer, strand string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strand-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin.natsServer = filepath.Join(dir, "nats-server")
	bin.strand = filepath.Join(dir, "strand")
	for _, b := range []struct{ out, pkg string }{
		{bin.natsServer, "github.com/nats-io/nats-server/v2"},
		{bin.strand, "./cmd/strand"},
	} {
		t0 := time.Now()
		cmd := exec.Command(goTool(), "build", "-o", b.out, b.pkg)
		cmd.Dir = ".." // the module root, so go.mod pins the versions
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "faults: built %s in %v\n", b.pkg, time.Since(t0).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// proc is a child process whose output is kept for the failure report.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	out bytes.Buffer
	// lines receives stdout lines until the process ends.
	lines chan string
}

// startProc starts a child process. It is SIGKILLed at the end of the test
// (and, on Linux, if the test process dies first).
func startProc(t *testing.T, name string, env []string, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{}), lines: make(chan string, 1024)}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = procAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d):\n%s", name, cmd.Process.Pid, tail(p.output(), 60))
		}
	})
	return p
}

type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// waitLine waits until the process prints a line containing s.
func (p *proc) waitLine(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited before printing %q; output:\n%s", p.name, s, tail(p.output(), 40))
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("%s did not print %q within %v; output:\n%s", p.name, s, timeout, tail(p.output(), 40))
		}
	}
}

// natsCluster is deploy/local-cluster.sh in Go: three nats-server processes
// with deploy/cluster/n1.conf .. n3.conf (client ports 14222-14224, routes
// 16222-16224, monitoring 18222-18224, sync_interval: always) and their data
// in the test's temp folder.
type natsCluster struct {
	dir   string
	procs [3]*proc
}

var clusterPorts = []int{14222, 14223, 14224, 16222, 16223, 16224, 18222, 18223, 18224}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	for _, port := range clusterPorts {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d is taken (is deploy/local-cluster.sh running?): %v", port, err)
		}
		l.Close()
	}
	c := &natsCluster{dir: t.TempDir()}
	for i := range 3 {
		c.start(t, i)
	}
	c.waitHealthy(t, true, 0, 1, 2)
	return c
}

// start starts node i (again) on its data.
func (c *natsCluster) start(t *testing.T, i int) {
	t.Helper()
	name := fmt.Sprintf("n%d", i+1)
	conf, err := filepath.Abs(filepath.Join("..", "deploy", "cluster", name+".conf"))
	if err != nil {
		t.Fatal(err)
	}
	c.procs[i] = startProc(t, "nats-server "+name, []string{"STRAND_NATS_STORE=" + filepath.Join(c.dir, name)}, bin.natsServer, "-c", conf)
}

// kill SIGKILLs node i.
func (c *natsCluster) kill(i int) { c.procs[i].kill() }

// URLs lists the client URLs, starting with node first (for spreading
// connections over the nodes).
func (c *natsCluster) URLs(first int) string {
	var out []string
	for k := range 3 {
		out = append(out, c.URL((first+k)%3))
	}
	return strings.Join(out, ",")
}

// URL is node i's client URL.
func (c *natsCluster) URL(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(14222+i) }

// waitHealthy waits up to 60 s until the given nodes pass the health check:
// metaOnly, a known JetStream meta leader; otherwise also every stream and
// consumer they hold is current.
func (c *natsCluster) waitHealthy(t *testing.T, metaOnly bool, nodes ...int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for _, i := range nodes {
		url := fmt.Sprintf("http://127.0.0.1:%d/healthz", 18222+i)
		if metaOnly {
			url += "?js-meta-only=true"
		}
		for {
			resp, err := client.Get(url)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("%s: %s", resp.Status, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("node n%d not healthy after 60s: %v", i+1, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// startServe runs `strand serve` with args and waits until it serves.
func startServe(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := startProc(t, name, nil, bin.strand, append([]string{"serve", "--log-level", "warn", "--http", "127.0.0.1:0"}, args...)...)
	p.waitLine(t, "strand: serving on", 90*time.Second)
	return p
}

// freePort returns a loopback port that was free just now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
