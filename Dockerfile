# syntax=docker/dockerfile:1
#
# ringcache image: ringcached (ENTRYPOINT) and ringcachectl, static binaries on
# distroless, running as the nonroot user 65532 (the user deploy/k8s expects).
#
#   docker build -t ringcache:dev .
#   docker run --rm -p 7101:7101 ringcache:dev            # a single node, pure cache
#   docker run --rm ringcache:dev --help
#   kubectl exec ringcache-0 -- ringcachectl members      # ringcachectl is on PATH
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 .
# (the builder runs natively and cross-compiles; no CGO: SQLite is pure Go).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
# The version the binaries report (--version, the RESP door's INFO); .git is
# not in the build context, so pass it:
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty=+dirty) .
ARG VERSION=devel
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X github.com/ringcache/ringcache/internal/buildinfo.version=${VERSION}" -o /out/ringcached ./cmd/node && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X github.com/ringcache/ringcache/internal/buildinfo.version=${VERSION}" -o /out/ringcachectl ./cmd/ctl
# An empty data dir; COPY --chown below makes it the runtime user's, so
# `docker run` without a volume can write it (in Kubernetes the PVC is mounted
# over it and fsGroup makes it writable).
RUN mkdir -p /out/var/lib/ringcache

# static: no libc needed; nonroot: uid/gid 65532; CA certificates and tzdata
# included (PostgreSQL over TLS).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ringcached /out/ringcachectl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/var/lib/ringcache /var/lib/ringcache
USER 65532:65532
WORKDIR /var/lib/ringcache
# 7101 gRPC (clients and peers), 7201 gossip (memberlist: TCP and UDP),
# 7301 admin HTTP (/metrics, /healthz, /readyz).
EXPOSE 7101/tcp 7201/tcp 7201/udp 7301/tcp
ENTRYPOINT ["/usr/local/bin/ringcached"]
# Defaults for a lone container; Kubernetes replaces them with its args.
CMD ["--grpc-addr=0.0.0.0:7101", "--gossip-addr=0.0.0.0:7201", "--data-dir=/var/lib/ringcache"]
