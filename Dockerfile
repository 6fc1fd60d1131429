# The image: FROM scratch with the two static binaries, run as nobody.
#
#   docker build .       builds the binaries inside, in a Go stage: a clone is
#   podman build .       all it needs (Docker with BuildKit, the default with
#                        buildx, or podman/buildah: both skip the stage below
#                        they do not need)
#   make image           builds them on the host first (make build, the
#                        release build with branch, user and date) and copies
#                        them in: --target prebuilt
#
# Docker's legacy builder (no buildx) builds every stage, the prebuilt one
# too: there run `make build` first, or `make image`.
ARG GO_IMAGE=docker.io/library/golang:1.26

# What both ways share.
FROM scratch AS base
LABEL org.opencontainers.image.title="container_vnic_exporter" \
      org.opencontainers.image.description="Which host-side virtual NIC belongs to which container" \
      org.opencontainers.image.licenses="Apache-2.0"
EXPOSE 10054
# Run with host network and host PID namespaces, the host's /proc at
# /host/proc (--path.procfs=/host/proc), all capabilities dropped but
# SYS_PTRACE and NET_ADMIN (and NET_BROADCAST for the cache); see docs/running.md,
# "Privileges". podman hands added capabilities to this non-root user as
# ambient ones; Docker and Kubernetes do not, so there run it as user 0
# with every other capability dropped (examples/kubernetes/daemonset.yaml).
USER 65534:65534
ENTRYPOINT ["/bin/container_vnic_exporter"]

# Binaries built beforehand into .build/OS-ARCH, as make build and promu
# lay them out.
FROM base AS prebuilt
ARG OS="linux"
ARG ARCH="amd64"
COPY .build/${OS}-${ARCH}/container_vnic_exporter .build/${OS}-${ARCH}/psnic /bin/

# Binaries built here, static (the image has no C library). The version
# comes from VERSION, which the binaries embed.
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -tags netgo -o /out/ ./cmd/...

FROM base
COPY --from=build /out/container_vnic_exporter /out/psnic /bin/
