// Command container_vnic_exporter exports which host-side virtual NIC
// belongs to which container network namespace.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
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

	"github.com/container-vnic/container_vnic_exporter/collector"
	"github.com/container-vnic/container_vnic_exporter/internal/cgroupid"
	"github.com/container-vnic/container_vnic_exporter/internal/coalesce"
	"github.com/container-vnic/container_vnic_exporter/internal/vnic"
)

const exporterName = "container_vnic_exporter"

func main() {
	os.Exit(run())
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
			"Add container_id, pod_uid and runtime labels to container_vnic_info, from the cgroup of each namespace's lowest PID.").
			Default("false").Bool()
		useCache = kingpin.Flag("resolver.cache",
			"Keep what is known of each namespace between scrapes, kept exact by link notifications (needs CAP_NET_BROADCAST). --no-resolver.cache asks the kernel about every namespace on every scrape.").
			Default("true").Bool()
		webConfig = kingpinflag.AddFlags(kingpin.CommandLine, ":10054")
	)
	logConfig := &promslog.Config{}
	flag.AddFlags(kingpin.CommandLine, logConfig)
	kingpin.Version(version.Print(exporterName))
	kingpin.HelpFlag.Short('h')
	kingpin.Parse()
	logger := promslog.New(logConfig)

	logger.Info("Starting "+exporterName, "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	resolver, err := vnic.New(vnic.Options{ProcfsPath: *procfsPath, NoCache: !*useCache})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	defer resolver.Close()
	if err := resolver.CacheError(); err != nil {
		logger.Warn("no link notifications: every scrape asks the kernel about every namespace (grant CAP_NET_BROADCAST to cache)", "err", err)
	}
	if missing := missingCapabilities(); len(missing) > 0 {
		logger.Warn("running without capabilities the exporter needs: processes it cannot read are counted in container_vnic_processes_skipped, namespaces it cannot query in container_vnic_scrape_errors (cause permission_denied); see README, Privileges",
			"missing", strings.Join(missing, ","))
	}

	registry := prometheus.NewRegistry()
	vnicCollector := collector.New(resolver, logger)
	if *identity {
		vnicCollector.WithIdentity(cgroupid.NewLookup(*procfsPath).Identity)
	}
	registry.MustRegister(vnicCollector, versioncollector.NewCollector(exporterName))
	var gatherers prometheus.Gatherers = prometheus.Gatherers{registry}
	handlerOpts := promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: *maxRequests,
	}
	var handler http.Handler
	if *disableExporterMetrics {
		handler = promhttp.HandlerFor(gatherers, handlerOpts)
	} else {
		exporterRegistry := prometheus.NewRegistry()
		exporterRegistry.MustRegister(
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			collectors.NewGoCollector(),
		)
		handlerOpts.Registry = exporterRegistry
		gatherers = append(gatherers, exporterRegistry)
		handler = promhttp.InstrumentMetricHandler(exporterRegistry, promhttp.HandlerFor(gatherers, handlerOpts))
	}

	mux := http.NewServeMux()
	// Scrapes that arrive together share one resolution and one encoding.
	mux.Handle(*metricsPath, coalesce.New(handler, *timeoutOffset))
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Container vNIC Exporter",
			Description: "Which host-side virtual NIC belongs to which container",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: *metricsPath, Text: "Metrics"}},
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

// needed lists the capabilities the exporter uses, by bit number, and why.
var needed = []struct {
	bit  uint
	name string
}{
	{19, "CAP_SYS_PTRACE"},    // read and open /proc/PID/ns/net of other users' processes
	{12, "CAP_NET_ADMIN"},     // query links of another namespace (IFLA_TARGET_NETNSID), assign nsids
	{11, "CAP_NET_BROADCAST"}, // hear link events of all namespaces (NETLINK_LISTEN_ALL_NSID): the cache
}

// missingCapabilities returns the needed capabilities absent from the
// effective set in /proc/self/status.
func missingCapabilities() []string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return []string{fmt.Sprintf("unknown (%v)", err)}
	}
	var eff uint64
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err = strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				return []string{fmt.Sprintf("unknown (CapEff %q)", hex)}
			}
		}
	}
	var missing []string
	for _, c := range needed {
		if eff&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	return missing
}
