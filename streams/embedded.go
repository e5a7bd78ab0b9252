package streams

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configures the embedded nats-server.
type EmbeddedOptions struct {
	// DataDir holds JetStream's files (under DataDir/jetstream).
	DataDir string
	// Listen is HOST:PORT for client connections; port 0 or -1 picks one.
	Listen string
	// SyncAlways fsyncs every write before acknowledging it.
	SyncAlways bool
	// MaxPayload is the largest message in bytes (0: 8 MiB).
	MaxPayload int32
	// Logging turns the server's own log on.
	Logging bool
	// ServerName names the server (default "strand").
	ServerName string
}

// DefaultMaxPayload is the embedded server's message limit: large enough for
// one 4 MiB blob chunk in base64 JSON plus headers.
const DefaultMaxPayload = 8 << 20

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	Server *server.Server
}

// StartEmbedded starts a nats-server with JetStream on file storage and waits
// until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	host, port := "127.0.0.1", 4222
	if o.Listen != "" {
		h, p, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", o.Listen, err)
		}
		if h != "" {
			host = h
		}
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("listen port %q: %w", p, err)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
	}
	name := o.ServerName
	if name == "" {
		name = "strand"
	}
	maxPayload := o.MaxPayload
	if maxPayload == 0 {
		maxPayload = DefaultMaxPayload
	}
	opts := &server.Options{
		ServerName:         name,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           filepath.Clean(o.DataDir),
		SyncAlways:         o.SyncAlways,
		MaxPayload:         maxPayload,
		NoSigs:             true,
		NoLog:              !o.Logging,
		JetStreamMaxMemory: -1,
		JetStreamMaxStore:  -1,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats-server: %w", err)
	}
	if o.Logging {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server not ready after 30s")
	}
	return &Embedded{Server: s}, nil
}

// ClientURL is the URL other processes connect to.
func (e *Embedded) ClientURL() string { return e.Server.ClientURL() }

// Connect opens an in-process connection to the server (no TCP).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(e.Server), nats.Name("strand")}, opts...)
	return nats.Connect("", opts...)
}

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}
