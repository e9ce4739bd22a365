package observe

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/backend"
)

// backendCollector exports the counters that the backend pools keep for themselves
// (breaker trips, outlier ejections), read at scrape time so that the data path
// pays nothing for them. A pool's counts start from zero when its backend is
// added to the configuration; Prometheus takes the drop of a backend removed and
// added back as a counter reset.
type backendCollector struct {
	manager   atomic.Pointer[backend.Manager]
	trips     *prometheus.Desc
	ejections *prometheus.Desc
}

func newBackendCollector() *backendCollector {
	return &backendCollector{
		trips: prometheus.NewDesc("switchyard_backend_circuit_breaker_trips_total",
			"Requests and retries a backend's circuit breaker turned away.", []string{"backend"}, nil),
		ejections: prometheus.NewDesc("switchyard_backend_outlier_ejections_total",
			"Endpoints of a backend that outlier detection ejected.", []string{"backend"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.trips
	ch <- c.ejections
}

// Collect implements prometheus.Collector.
func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.manager.Load()
	if m == nil {
		return
	}
	for _, p := range m.Pools() {
		ch <- prometheus.MustNewConstMetric(c.trips, prometheus.CounterValue, float64(p.Breaker().Overflows()), p.Name())
		ch <- prometheus.MustNewConstMetric(c.ejections, prometheus.CounterValue, float64(p.Ejections()), p.Name())
	}
}
