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
	"path"
	"regexp"
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
	var labelsOnCountersSet bool // --collector.counters.identity given, either way
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
			"Add container_id, pod_uid and runtime labels to container_vnic_info (and to the counter and state series: see --collector.counters.identity), from the cgroup of each namespace's oldest process (the one its pid label names).").
			Default("false").Bool()
		nested = kingpin.Flag("collector.container-identity.nested",
			"With --collector.container-identity, name a process by the innermost runtime cgroup it is in, not the outermost: the containers of kind nodes and Docker-in-Docker get their own identities, but a container allowed to make sub-cgroups (privileged, or with a delegated cgroup v2 subtree) can then take another container's identity by naming a sub-cgroup after it. Turn on only where every such container is trusted.").
			Default("false").Bool()
		kubernetes = kingpin.Flag("collector.kubernetes",
			"Add namespace and pod labels to the vNIC series, and export container_vnic_container_info and container_vnic_kubernetes_up, from the node's container runtime over the CRI (pods matched by the pod_uid of --collector.container-identity, which this turns on).").
			Default("false").Bool()
		criEndpoint = kingpin.Flag("kubernetes.cri-endpoint",
			"The container runtime's CRI socket (unix:///path or a path). Default: the first that exists and serves the CRI of "+strings.Join(kube.DefaultSockets, ", ")+", under --path.rootfs.").
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
			"Export the traffic counters of both ends of every vNIC (container_vnic_receive_bytes_total, container_vnic_host_*, container_vnic_parent_*), read fresh on every scrape: one netlink get per container link, sixteen to a request. --no-collector.counters turns them off.").
			Default("true").Bool()
		ends = kingpin.Flag("collector.counters.ends",
			"With counters, the ends of each vNIC to export, comma-separated: container (container_vnic_*), host (container_vnic_host_*), parent (container_vnic_parent_*, the host interface under macvlan-like links).").
			Default(strings.Join(collector.Ends, ",")).String()
		kinds = kingpin.Flag("collector.counters.kinds",
			"With counters, the families of each end to export, comma-separated: bytes, packets, errors, drops (the *_total counters) and state (*_up, *_carrier, *_mtu_bytes gauges).").
			Default(strings.Join(collector.Kinds, ",")).String()
		labelsOnCounters = kingpin.Flag("collector.counters.identity",
			"Put the identity labels (--collector.container-identity) on every counter and state series too, so one selector finds a container's traffic; --no-collector.counters.identity keeps them on container_vnic_info only (half the bytes of a scrape with 64-character container ids; join on netns and container_ifname). Default: on, but off with --collector.kubernetes, whose namespace and pod labels on the counters already name the pod (those stay on the counters either way).").
			Default("true").IsSetByUser(&labelsOnCountersSet).Bool()
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

	// Checked with --collector.kubernetes off too: a bad value is a typo
	// that would show only the day the collector is turned on.
	if *criTimeout <= 0 {
		logger.Error("--kubernetes.cri-timeout must be positive: how long a scrape waits for the container runtime, e.g. 1s", "value", *criTimeout)
		return 1
	}
	if !plainPath(*metricsPath) {
		logger.Error("--web.telemetry-path must be a plain URL path: a slash, then letters, digits and . _ ~ - /, e.g. /metrics", "value", *metricsPath)
		return 1
	}
	if *timeoutOffset < 0 {
		logger.Error("--web.timeout-offset must not be negative: it is taken off the scraper's timeout, e.g. 0.5s", "value", *timeoutOffset)
		return 1
	}
	if *criRefresh < 0 {
		logger.Error("--kubernetes.refresh-interval must not be negative: how old pod names may get, e.g. 15s, or 0 to ask at every scrape", "value", *criRefresh)
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

	vnicCollector, err := collector.New(resolver, logger).WithSeries(*ends, *kinds)
	if err != nil {
		// As kingpin answers any other bad flag: stderr, exit 1.
		kingpin.Fatalf("%v", err)
	}
	if *identity || *kubernetes {
		src := collector.IdentitySource(cgroupid.Options{Nested: *nested}.Lookup(*procfsPath).Identity)
		// With pod names on the counters, container_id, pod_uid and
		// runtime there would double their bytes for nothing a join
		// needs (docs/exporter.md): info only, unless asked for. The
		// names stay on the counters either way.
		src.InfoOnly = !*labelsOnCounters || *kubernetes && !labelsOnCountersSet
		vnicCollector.WithLabels(src)
	} else if *nested {
		logger.Warn("--collector.container-identity.nested does nothing without --collector.container-identity")
	}
	if *kubernetes {
		cri, err := kube.New(kube.Options{Endpoint: *criEndpoint, Root: *rootfsPath, Timeout: *criTimeout, RefreshInterval: *criRefresh, Logger: logger})
		if err != nil {
			logger.Error("cannot start", "err", err)
			return 1
		}
		defer func() { _ = cri.Close() }()
		logger.Info("naming pods from the container runtime", "endpoint", cri.Endpoint())
		// After the identity labels, whose pod_uid names the pod.
		vnicCollector.WithKubernetes(cri)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(versioncollector.NewCollector(exporterName))
	mux := http.NewServeMux()
	mux.Handle(*metricsPath, metricsHandler(vnicCollector, registry, !*disableExporterMetrics, *maxRequests, *timeoutOffset, logger))
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
	// HTTP/2 (with TLS): a stream whose writes time out is reset, but the
	// reset waits behind what the connection has queued; a connection that
	// takes nothing for a minute is closed, with all its streams.
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		HTTP2: &http.HTTP2Config{WriteByteTimeout: time.Minute}}
	served := make(chan error, 1)
	go func() { served <- web.ListenAndServe(server, webConfig, logger) }()
	select {
	case err := <-served:
		logger.Error("cannot serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		// A scrape still being written 10 s on has a client that does not
		// read: it is cut off, as its write deadline would have.
		logger.Warn("closing the connections of scrapes still being written after 10 s", "err", err)
		_ = server.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

// plainPath reports whether --web.telemetry-path may be p: a path, as
// ServeMux takes it, with no method, host, wildcard or space to be read
// otherwise; and clean (no //, . or ..), or ServeMux would redirect every
// request to it.
func plainPath(p string) bool {
	return telemetryPath.MatchString(p) && !strings.Contains(p, "//") &&
		(p == "/" || path.Clean(p) == strings.TrimSuffix(p, "/"))
}

var telemetryPath = regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`)

// metricsHandler serves the collector's metrics and registry's, and the
// exporter's own unless exporterMetrics is false. Every scrape is a
// request of its own, counted in promhttp_metric_handler_requests_total
// and held to maxRequests; concurrent scrapes share the collector's
// resolution and its encoding (collector.Handler), and the formats it does
// not write itself (protobuf) go through promhttp.
func metricsHandler(c *collector.Collector, registry *prometheus.Registry, exporterMetrics bool, maxRequests int, timeoutOffset time.Duration, logger *slog.Logger) http.Handler {
	errorLog := slog.NewLogLogger(logger.Handler(), slog.LevelError)
	all := prometheus.NewRegistry()
	all.MustRegister(c)
	rest := prometheus.Gatherers{registry}
	opts := collector.HandlerOpts{
		MaxRequestsInFlight: maxRequests,
		Deadline: func(r *http.Request) (time.Duration, bool) {
			return scrapeDeadline(r.Header.Get(timeoutHeader), timeoutOffset)
		},
		ErrorLog: logger,
	}
	var own *prometheus.Registry
	if exporterMetrics {
		own = prometheus.NewRegistry()
		own.MustRegister(
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			collectors.NewGoCollector(),
		)
		rest = append(rest, own)
		opts.Registry = own
	}
	opts.Rest = rest
	fallbackOpts := promhttp.HandlerOpts{ErrorLog: errorLog, ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true}
	if own != nil {
		fallbackOpts.Registry = own
	}
	opts.Fallback = withScrapeTimeout(promhttp.HandlerFor(append(prometheus.Gatherers{all}, rest...), fallbackOpts), timeoutOffset)
	handler := c.Handler(opts)
	if own == nil {
		return handler
	}
	return promhttp.InstrumentMetricHandler(own, handler)
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
