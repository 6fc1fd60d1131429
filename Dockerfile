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
# Needs CAP_SYS_PTRACE and CAP_NET_ADMIN, host network and host PID
# namespaces (see README, "Privileges").
USER 65534:65534
ENTRYPOINT ["/bin/container_vnic_exporter"]
