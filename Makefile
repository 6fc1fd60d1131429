# Release builds and the image. `go build` and `go run` work without this:
# they report the version from VERSION and, in a git checkout, the revision
# the Go toolchain records. This adds branch, build user and date.
#
# The build flags are written once, in .promu.yml (promu builds from it
# as-is): this reads its ldflags, tags, cgo setting and binaries, and fills
# in promu's template fields itself, so `make build` and `promu build` give
# the same binaries without promu installed.

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

# .promu.yml's build section, read with awk (the file is plain YAML; the
# shapes read here are the ones it has).
promu_ldflags := $(shell awk '/^  ldflags: \|/ {on=1; next} on && /^    / {print; next} {on=0}' .promu.yml)
promu_tags    := $(shell awk '/^  tags:/ {on=1; next} on && /^      - / {print $$2; next} on && /^    / {next} {on=0}' .promu.yml)
promu_cgo     := $(shell awk '/^  cgo:/ {print $$2}' .promu.yml)
promu_paths   := $(shell awk '/^      path: / {print $$2}' .promu.yml)

# promu's template fields, filled in as promu does; REVISION says
# "-modified" where promu would not.
LDFLAGS := $(strip $(promu_ldflags))
LDFLAGS := $(subst {{.Version}},$(VERSION),$(LDFLAGS))
LDFLAGS := $(subst {{.Revision}},$(REVISION),$(LDFLAGS))
LDFLAGS := $(subst {{.Branch}},$(BRANCH),$(LDFLAGS))
LDFLAGS := $(subst {{user}},$(shell id -un),$(LDFLAGS))
LDFLAGS := $(subst {{host}},$(shell hostname),$(LDFLAGS))
LDFLAGS := $(subst {{date "20060102-15:04:05"}},$(shell date -u +%Y%m%d-%H:%M:%S),$(LDFLAGS))
ifneq ($(findstring {{,$(LDFLAGS)),)
$(error .promu.yml ldflags use a template field this Makefile does not fill in: $(LDFLAGS))
endif
ifeq ($(strip $(promu_ldflags)),)
$(error no build.ldflags read from .promu.yml)
endif
ifeq ($(strip $(promu_paths)),)
$(error no build.binaries paths read from .promu.yml)
endif
comma := ,
empty :=
space := $(empty) $(empty)
TAGS       := $(subst $(space),$(comma),$(strip $(promu_tags)))
CGO_ENABLED := $(if $(filter true,$(promu_cgo)),1,0)

.PHONY: build image push test bench

build: ## static binaries into $(BUILD)/, the layout the Dockerfile copies from
	CGO_ENABLED=$(CGO_ENABLED) GOOS=linux GOARCH=$(GOARCH) go build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BUILD)/ $(promu_paths)

image: build ## $(IMAGE):v$(VERSION), from the binaries of make build (the Dockerfile's prebuilt target)
	@echo "== building the image with $(ENGINE) (override: make image ENGINE=docker)"
	$(ENGINE) build --target prebuilt --build-arg OS=linux --build-arg ARCH=$(GOARCH) -t $(IMAGE):v$(VERSION) .

push: image
	$(ENGINE) push $(IMAGE):v$(VERSION)

test:
	bash .ci/run

bench:
	bash bench/run.sh
