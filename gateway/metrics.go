package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's own figures; the deployment's (streams,
// consumers, projections) are collectors registered by whoever wires the
// gateway (cmd/strand).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, p *pool) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strand", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by endpoint (area.verb) and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strand", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from an HTTP request to its last byte, by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
	}
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "strand", Subsystem: "http", Name: "pooled_connections",
		Help: "NATS connections the gateway holds, one per credential in use.",
	}, func() float64 { return float64(p.size()) })
	for _, c := range []prometheus.Collector{m.requests, m.latency, conns} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// instrument counts and times the requests of one endpoint.
func (m *metrics) instrument(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		// Series appear once an endpoint is used, not ~100 of them at start.
		m.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(endpoint, strconv.Itoa(sw.status)).Inc()
	})
}

// statusWriter remembers the status of a response. Unwrap lets
// http.ResponseController reach the connection's Flusher (server-sent
// events).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (g *Gateway) metricsHandler() http.Handler {
	return promhttp.HandlerFor(g.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: nil})
}
