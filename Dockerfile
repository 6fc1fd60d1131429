# Built by promu (`promu crossbuild`, then `docker build`) or by hand:
#   CGO_ENABLED=0 go build -o .build/linux-amd64/ ./cmd/...
# The binaries are static, so the image needs no base layer.
ARG ARCH="amd64"
ARG OS="linux"
FROM scratch
ARG ARCH="amd64"
ARG OS="linux"
LABEL org.opencontainers.image.title="container_vnic_exporter" \
      org.opencontainers.image.description="Which host-side virtual NIC belongs to which container" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY .build/${OS}-${ARCH}/container_vnic_exporter /bin/container_vnic_exporter
COPY .build/${OS}-${ARCH}/psnic /bin/psnic
EXPOSE 10054
# Run with host network and host PID namespaces, the host's /proc at
# /host/proc (--path.procfs=/host/proc), all capabilities dropped but
# SYS_PTRACE and NET_ADMIN (and NET_BROADCAST for the cache); see docs/running.md,
# "Privileges". podman hands added capabilities to this non-root user as
# ambient ones; Docker and Kubernetes do not, so there run it as user 0
# with every other capability dropped (examples/kubernetes/daemonset.yaml).
USER 65534:65534
ENTRYPOINT ["/bin/container_vnic_exporter"]
