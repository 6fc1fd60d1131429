// Command container_vnic_exporter exports which host-side virtual NIC
// belongs to which container network namespace.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	containervnicexporter "github.com/container-vnic/container_vnic_exporter"
	"github.com/container-vnic/container_vnic_exporter/collector"
	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/kube"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

const exporterName = "container_vnic_exporter"

func main() {
	stampVersion()
	os.Exit(run())
}

// stampVersion hands the build facts to prometheus/common/version (for
// --version, the log and build_info), keeping what -ldflags set there.
func stampVersion() {
	b := containervnicexporter.Info()
	for _, v := range []struct {
		dst *string
		src string
	}{
		{&version.Version, b.Version}, {&version.Revision, b.Revision}, {&version.Branch, b.Branch},
		{&version.BuildUser, b.BuildUser}, {&version.BuildDate, b.BuildDate},
	} {
		if *v.dst == "" {
			*v.dst = v.src
		}
	}
}

func run() int {
	var (
		metricsPath = kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").
				Default("/metrics").String()
		disableExporterMetrics = kingpin.Flag("web.disable-exporter-metrics",
			"Exclude metrics about the exporter itself (promhttp_*, process_*, go_*).").Bool()
		timeoutOffset = kingpin.Flag("web.timeout-offset",
			"Taken off the scraper's X-Prometheus-Scrape-Timeout-Seconds: a scrape still unanswered by then gets 503, and the resolution under way goes on for the next one.").
			Default("0.5s").Duration()
		maxRequests = kingpin.Flag("web.max-requests",
			"Maximum number of parallel scrape requests. Use 0 to disable.").Default("40").Int()
		procfsPath = kingpin.Flag("path.procfs", "procfs mountpoint: the host's /proc, e.g. /host/proc in a container.").
				Default("/proc").String()
		identity = kingpin.Flag("collector.container-identity",
			"Add container_id, pod_uid and runtime labels to container_vnic_info, from the cgroup of each namespace's oldest process (the one its pid label names).").
			Default("false").Bool()
		kubernetes = kingpin.Flag("collector.kubernetes",
			"Add namespace and pod labels to the vNIC series, and export container_vnic_container_info and container_vnic_kubernetes_up, from the node's container runtime over the CRI (pods matched by the pod_uid of --collector.container-identity, which this turns on).").
			Default("false").Bool()
		criEndpoint = kingpin.Flag("kubernetes.cri-endpoint",
			"The container runtime's CRI socket (unix:///path or a path). Default: the first that exists of "+strings.Join(kube.DefaultSockets, ", ")+", under --path.rootfs.").
			String()
		criTimeout = kingpin.Flag("kubernetes.cri-timeout",
			"How long a scrape waits for the container runtime before answering with the names last seen and container_vnic_kubernetes_up 0.").
			Default("1s").Duration()
		criRefresh = kingpin.Flag("kubernetes.refresh-interval",
			"How old pod names may get before the runtime is asked again (in the background; a scrape answers from the names last seen). A new pod is named in the scrape that first sees it, whatever this says. 0 asks at every scrape.").
			Default("15s").Duration()
		rootfsPath = kingpin.Flag("path.rootfs", "The host's root filesystem mountpoint, e.g. /host in a container: where the default CRI sockets are looked for.").
				Default("/").String()
		counters = kingpin.Flag("collector.counters",
			"Export the traffic counters of both ends of every vNIC (container_vnic_receive_bytes_total, container_vnic_host_*, container_vnic_parent_*), read fresh on every scrape: one link dump per namespace. --no-collector.counters turns them off.").
			Default("true").Bool()
		useCache = kingpin.Flag("resolver.cache",
			"Keep what is known of each namespace between scrapes, kept exact by link notifications (needs CAP_NET_BROADCAST). --no-resolver.cache asks the kernel about every namespace on every scrape.").
			Default("true").Bool()
		webConfig = kingpinflag.AddFlags(kingpin.CommandLine, ":10054")
	)
	logConfig := &promslog.Config{}
	flag.AddFlags(kingpin.CommandLine, logConfig)
	kingpin.Version(version.Print(exporterName))
	kingpin.HelpFlag.Short('h')
	// --help and --version answer on stdout, as node_exporter's do; errors stay on stderr.
	kingpin.CommandLine.UsageWriter(os.Stdout)
	kingpin.Parse()
	logger := promslog.New(logConfig)

	logger.Info("Starting "+exporterName, "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	if *kubernetes && *criTimeout <= 0 {
		logger.Error("--kubernetes.cri-timeout must be positive: how long a scrape waits for the container runtime, e.g. 1s", "value", *criTimeout)
		return 1
	}
	resolver, err := vnic.New(vnic.Options{ProcfsPath: *procfsPath, NoCache: !*useCache, Counters: *counters})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	defer resolver.Close()
	if err := resolver.CacheError(); err != nil {
		logger.Warn("no link notifications: every scrape asks the kernel about every namespace (grant CAP_NET_BROADCAST to cache)", "err", err)
	}
	if missing := missingCapabilities(); len(missing) > 0 {
		logger.Warn("running without capabilities the exporter needs: processes it cannot read are counted in container_vnic_processes_skipped, namespaces it cannot query in container_vnic_scrape_errors (cause permission_denied); see docs/running.md, Privileges",
			"missing", strings.Join(missing, ","))
	}

	registry := prometheus.NewRegistry()
	vnicCollector := collector.New(resolver, logger)
	if *identity || *kubernetes {
		vnicCollector.WithIdentity(cgroupid.NewLookup(*procfsPath).Identity)
	}
	if *kubernetes {
		cri, err := kube.New(kube.Options{Endpoint: *criEndpoint, Root: *rootfsPath, Timeout: *criTimeout, RefreshInterval: *criRefresh, Logger: logger})
		if err != nil {
			logger.Error("cannot start", "err", err)
			return 1
		}
		defer func() { _ = cri.Close() }()
		logger.Info("naming pods from the container runtime", "endpoint", cri.Endpoint())
		vnicCollector.WithKubernetes(cri)
	}
	registry.MustRegister(vnicCollector, versioncollector.NewCollector(exporterName))
	mux := http.NewServeMux()
	mux.Handle(*metricsPath, metricsHandler(registry, !*disableExporterMetrics, *maxRequests, *timeoutOffset, logger))
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Container vNIC Exporter",
			Description: "Which host-side virtual NIC belongs to which container",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: *metricsPath, Text: "Metrics"}},
			// The toolkit links /debug/pprof/*, which this exporter does not serve.
			Profiling: "false",
		})
		if err != nil {
			logger.Error("cannot build landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(server, webConfig, logger) }()
	select {
	case err := <-served:
		logger.Error("cannot serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

// metricsHandler serves registry's metrics, and the exporter's own unless
// exporterMetrics is false. Every scrape is a request of its own to
// promhttp, so each is counted in promhttp_metric_handler_requests_total
// and held to maxRequests; concurrent scrapes share the resolution inside
// the collector, not the HTTP answer.
func metricsHandler(registry *prometheus.Registry, exporterMetrics bool, maxRequests int, timeoutOffset time.Duration, logger *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxRequests,
	}
	if !exporterMetrics {
		return withScrapeTimeout(promhttp.HandlerFor(registry, opts), timeoutOffset)
	}
	own := prometheus.NewRegistry()
	own.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	opts.Registry = own
	handler := promhttp.HandlerFor(prometheus.Gatherers{registry, own}, opts)
	return promhttp.InstrumentMetricHandler(own, withScrapeTimeout(handler, timeoutOffset))
}

// missingCapabilities names the capabilities the exporter uses that it
// does not hold: the resolver's, and CAP_NET_BROADCAST for the cache.
func missingCapabilities() []string {
	missing := vnic.MissingCapabilities()
	if !vnic.HasCapability(vnic.CapNetBroadcast) {
		missing = append(missing, "CAP_NET_BROADCAST")
	}
	return missing
}
