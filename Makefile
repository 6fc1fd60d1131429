# Release builds and the image. `go build` and `go run` work without this:
# they report the version from VERSION and, in a git checkout, the revision
# the Go toolchain records. This adds branch, build user and date, as promu
# (.promu.yml) does for Prometheus projects.

VERSION  := $(shell cat VERSION)
# "-modified" as the Go toolchain says it: any change, untracked files included.
REVISION := $(shell git rev-parse HEAD 2>/dev/null)$(shell test -z "$$(git status --porcelain 2>/dev/null)" || echo -modified)
BRANCH   := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
GOARCH   ?= $(shell go env GOARCH)
BUILD    ?= .build/linux-$(GOARCH)
# The image examples/kubernetes/daemonset.yaml runs; set IMAGE to your registry's.
IMAGE    ?= ghcr.io/container-vnic/container-vnic-exporter
# The container engine that builds and pushes the image: podman if it is
# installed, else docker. Override it: make image ENGINE=docker
ENGINE   ?= $(or $(shell command -v podman 2>/dev/null),$(shell command -v docker 2>/dev/null),podman)

pkg := github.com/container-vnic/container_vnic_exporter
LDFLAGS := -X $(pkg).version=$(VERSION) -X $(pkg).revision=$(REVISION) -X $(pkg).branch=$(BRANCH) \
	-X $(pkg).buildUser=$(shell id -un)@$(shell hostname) -X $(pkg).buildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: build image push test bench

build: ## static binaries into $(BUILD)/, the layout the Dockerfile copies from
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -tags netgo -ldflags '$(LDFLAGS)' -o $(BUILD)/ ./cmd/...

image: build ## $(IMAGE):v$(VERSION), from the binaries of make build (the Dockerfile's prebuilt target)
	@echo "== building the image with $(ENGINE) (override: make image ENGINE=docker)"
	$(ENGINE) build --target prebuilt --build-arg OS=linux --build-arg ARCH=$(GOARCH) -t $(IMAGE):v$(VERSION) .

push: image
	$(ENGINE) push $(IMAGE):v$(VERSION)

test:
	bash .ci/run

bench:
	bash bench/run.sh
