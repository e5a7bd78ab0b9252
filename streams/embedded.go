package streams

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
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
	// ConfigFile is a nats-server configuration file (accounts, users,
	// TLS, limits). What it sets wins over the fields above, except that
	// JetStream is always on, DataDir is the store when the file names
	// none, and Listen applies when the file sets no port.
	ConfigFile string
	// ServiceAccount is the account the service connects to when the
	// configuration file defines accounts (default DefaultServiceAccount).
	ServiceAccount string
}

// DefaultServiceAccount is the account of the service in a configuration
// with accounts (deploy/auth/strand.conf).
const DefaultServiceAccount = "STRAND"

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	Server *server.Server
	// auth is how the in-process connection authenticates when the
	// configuration file requires it.
	auth []nats.Option
	// accounts is true when the configuration file defines accounts.
	accounts bool
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
		maxPayload = domain.DefaultMaxPayload
	}
	opts := &server.Options{}
	if o.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("nats-server configuration %s: %w", o.ConfigFile, err)
		}
	}
	if opts.ServerName == "" {
		opts.ServerName = name
	}
	if opts.Port == 0 {
		opts.Port = port
		if opts.Host == "" {
			opts.Host = host
		}
	}
	opts.JetStream = true
	if opts.StoreDir == "" {
		opts.StoreDir = filepath.Clean(o.DataDir)
	}
	opts.SyncAlways = opts.SyncAlways || o.SyncAlways
	if opts.MaxPayload == 0 {
		opts.MaxPayload = maxPayload
	}
	opts.NoSigs = true
	opts.NoLog = !o.Logging
	if opts.JetStreamMaxMemory == 0 {
		opts.JetStreamMaxMemory = -1
	}
	if opts.JetStreamMaxStore == 0 {
		opts.JetStreamMaxStore = -1
	}
	emb := &Embedded{accounts: len(opts.Accounts) > 0}
	svcAccount, err := emb.internalAuth(opts, o.ServiceAccount)
	if err != nil {
		return nil, err
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
	emb.Server = s
	if svcAccount != "" {
		// The service's account needs JetStream; a configuration that
		// forgot "jetstream: enabled" there gets it with no limits.
		acc, err := s.LookupAccount(svcAccount)
		if err == nil && !acc.JetStreamEnabled() {
			err = acc.EnableJetStream(nil, nil)
		}
		if err != nil {
			emb.Shutdown()
			return nil, fmt.Errorf("enable JetStream for account %s: %w", svcAccount, err)
		}
	}
	return emb, nil
}

// internalAuth lets the in-process connection of the service in when the
// configuration requires authentication: a token or a single user is used
// as it is; with users, nkeys or accounts a user with a random password,
// known only to this process, is added to the service's account. It
// returns that account's name ("" without accounts).
func (e *Embedded) internalAuth(opts *server.Options, account string) (string, error) {
	switch {
	case len(opts.TrustedOperators) > 0 || len(opts.TrustedKeys) > 0:
		return "", fmt.Errorf("nats-server configuration: operator (JWT) mode is not supported by the embedded server; run nats-server and use --nats")
	case opts.Authorization != "":
		e.auth = []nats.Option{nats.Token(opts.Authorization)}
		return "", nil
	case opts.Username != "":
		e.auth = []nats.Option{nats.UserInfo(opts.Username, opts.Password)}
		return "", nil
	case len(opts.Users) == 0 && len(opts.Nkeys) == 0 && len(opts.Accounts) == 0:
		return "", nil
	}
	var acc *server.Account
	if len(opts.Accounts) > 0 {
		if account == "" {
			account = DefaultServiceAccount
		}
		for _, a := range opts.Accounts {
			if a.Name == account {
				acc = a
			}
		}
		if acc == nil {
			return "", fmt.Errorf("nats-server configuration defines accounts but not %s, the service's account", account)
		}
	}
	var secret [24]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("internal credentials: %w", err)
	}
	user := "strand-internal-" + hex.EncodeToString(secret[:4])
	pass := hex.EncodeToString(secret[4:])
	opts.Users = append(opts.Users, &server.User{Username: user, Password: pass, Account: acc})
	if opts.AuthCallout != nil {
		// With an auth callout every other user is the callout's to
		// admit; the service's own connection must not depend on it.
		opts.AuthCallout.AuthUsers = append(opts.AuthCallout.AuthUsers, user)
	}
	e.auth = []nats.Option{nats.UserInfo(user, pass)}
	if acc == nil {
		return "", nil
	}
	return acc.Name, nil
}

// HasAccounts reports whether the server's configuration defines accounts:
// tenants are then isolated by NATS and requests carry the requester's
// identity (docs/security.md).
func (e *Embedded) HasAccounts() bool { return e.accounts }

// ClientURL is the URL other processes connect to.
func (e *Embedded) ClientURL() string { return e.Server.ClientURL() }

// Connect opens an in-process connection to the server (no TCP).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append(append([]nats.Option{nats.InProcessServer(e.Server), nats.Name("strand")}, e.auth...), opts...)
	return nats.Connect("", opts...)
}

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}
