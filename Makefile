# mcpbox — `make help` lists the targets.
GO        ?= go
TAGS      := seccomp
BIN       := bin
GOTEST    := CGO_ENABLED=1 $(GO) test -tags $(TAGS)
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# make install: GNU's variables. DESTDIR stages an install (the binaries are
# then found next to each other under $(BINDIR), as mcpbox looks for them).
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DESTDIR   ?=
APPARMOR_DIR := /etc/apparmor.d
# make deb: nfpm, fetched once into the module cache by `go run`, which then
# finds it there offline (the file:// proxy is that cache).
DIST         ?= dist
NFPM_VERSION := v2.48.0
DEB_VERSION   = $(shell scripts/debversion.sh)

.PHONY: help build setup fixtures test test-unit fuzz demo demo-user bench lint compare install uninstall deb clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/mcpbox (cgo + libseccomp), bin/mcpbox-init and bin/mcpbox-probe (static, run inside sandboxes)
	CGO_ENABLED=1 $(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/mcpbox ./cmd/mcpbox
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $(BIN)/mcpbox-init ./cmd/mcpbox-init
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $(BIN)/mcpbox-probe ./cmd/mcpbox-probe

setup: ## install missing Debian packages (as root), start containerd, prepare the unprivileged test user mcpbox-ci
	@scripts/setup.sh

fixtures: ## install the real MCP servers the tests use (npm ci, pinned by the lockfile)
	@cd testdata/servers && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; }

test: setup fixtures ## the whole suite, all three tiers (e2e/ included), then a short fuzz run
	$(GOTEST) -count=1 -timeout 15m ./...
	@$(MAKE) --no-print-directory fuzz

# Every fuzz target in the repository (found by scripts/fuzz.sh), FUZZTIME each.
FUZZTIME     ?= 10s
fuzz: ## run every fuzz target in the repo for FUZZTIME each (default 10s)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) TAGS=$(TAGS) scripts/fuzz.sh

test-unit: ## tiers 1 and 2 (-short): no containerd, no built binary; e2e/ skips itself
	$(GOTEST) -count=1 -short ./...

demo: setup fixtures build ## run a real MCP server sandboxed and talk to it, as you and (when root) again as an unprivileged user
	@scripts/demo.sh
	@if [ "$$(id -u)" -eq 0 ]; then scripts/demo-user.sh; fi

demo-user: setup fixtures build ## the demo again as an unprivileged user (mcpbox-ci when started as root), rootless
	@scripts/demo-user.sh

# The go test microbenchmarks print to the terminal; scripts/benchreport then
# measures whole sessions (start-up, latency, throughput, memory, concurrency)
# and writes docs/bench.md and docs/bench.svg (BENCH_ARGS: its flags, e.g. -runs 3).
bench: setup fixtures build ## benchmarks as ratios against bare baselines of the same run; writes docs/bench.md
	$(GOTEST) -run '^$$' -bench . ./launcher/broker/
	$(GOTEST) -run '^$$' -bench . ./sandbox/egress/
	$(GOTEST) -run '^$$' -bench . -benchtime 10x -timeout 20m ./e2e/
	$(GO) run ./scripts/benchreport $(BENCH_ARGS)

lint: ## go vet and staticcheck, with the seccomp build tag
	$(GO) vet -tags $(TAGS) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 -tags $(TAGS) ./...

compare: build ## run the probe under no sandbox, containerd's default, srt and mcpbox; a table (COMPARE_ARGS=--write-doc: into docs/security.md)
	@scripts/compare.sh $(COMPARE_ARGS)

install: build ## put mcpbox, mcpbox-init, mcpbox-probe in BINDIR (PREFIX/bin, PREFIX=/usr/local; DESTDIR stages), mcpbox(1) in MANDIR, and the AppArmor profile where AppArmor is 4.0+
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN)/mcpbox $(BIN)/mcpbox-init $(BIN)/mcpbox-probe $(DESTDIR)$(BINDIR)/
	$(BIN)/mcpbox man > $(BIN)/mcpbox.1 && install -m 0644 $(BIN)/mcpbox.1 $(DESTDIR)$(MANDIR)/man1/mcpbox.1
	@profile=$$($(GO) run ./scripts/apparmorprofile $(if $(DESTDIR),,-check) -o $(BIN)/apparmor $(BINDIR)/mcpbox) && \
	  if [ -n "$$profile" ]; then MCPBOX_APPARMOR_NOLOAD=$(if $(DESTDIR),1,) sh packaging/apparmor.sh install "$$profile" "$(DESTDIR)$(APPARMOR_DIR)/$$(basename "$$profile")"; fi

uninstall: ## remove what `make install` put in place (give it the same PREFIX, BINDIR and DESTDIR)
	rm -f $(DESTDIR)$(BINDIR)/mcpbox $(DESTDIR)$(BINDIR)/mcpbox-init $(DESTDIR)$(BINDIR)/mcpbox-probe $(DESTDIR)$(MANDIR)/man1/mcpbox.1
	@MCPBOX_APPARMOR_NOLOAD=$(if $(DESTDIR),1,) sh packaging/apparmor.sh remove "$(DESTDIR)$(APPARMOR_DIR)/$(subst /,.,$(patsubst /%,%,$(BINDIR)/mcpbox))"

deb: build ## build the Debian package dist/mcpbox_VERSION_ARCH.deb with nfpm (DIST=dir to put it elsewhere)
	@mkdir -p $(DIST)
	@$(BIN)/mcpbox man | gzip -9n > $(BIN)/mcpbox.1.gz
	@profile=$$($(GO) run ./scripts/apparmorprofile -o $(BIN)/deb /usr/bin/mcpbox) && \
	  MCPBOX_BIN=$(BIN) MCPBOX_PROFILE="$$profile" MCPBOX_DEB_VERSION=$(DEB_VERSION) MCPBOX_DEB_ARCH=$$($(GO) env GOARCH) \
	  GOPROXY="file://$$($(GO) env GOMODCACHE)/cache/download,$$($(GO) env GOPROXY)" \
	  $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) package --config packaging/nfpm.yaml --packager deb --target $(DIST)/

clean: ## remove build output
	rm -rf $(BIN) $(DIST)
